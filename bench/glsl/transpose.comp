// transpose: out[N][M] = in[M][N]^T, any M, N.
// The naive kernel, one element per invocation straight from global memory
// to global memory: on lavapipe it beats a 32x32 shared-memory tiled one
// (about 90 vs 170 ms at 4096^2, /work/shared/lavapipe-notes.md), since
// shared memory costs the same per-lane loop as global memory there and a
// barrier is a coroutine switch. (On a GPU the tiled one wins.)
#version 450
layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, set = 0, binding = 0) readonly buffer I { float a[]; };
layout(std430, set = 0, binding = 1) writeonly buffer O { float b[]; };
layout(push_constant) uniform P { uint M; uint N; } p;

void main() {
    uint c = gl_GlobalInvocationID.x, r = gl_GlobalInvocationID.y;
    if (r < p.M && c < p.N)
        b[c * p.M + r] = a[r * p.N + c];
}
