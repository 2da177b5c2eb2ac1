// SGEMM C[M][N] = A[M][K] * B[K][N], row-major.  Requires M, N multiples of
// 128 and K a multiple of 8 (the benchmark's 1024^3 is).
// 128x128 tile per workgroup of 16x16 invocations, 8x8 outputs per
// invocation, K-slices of 8 staged in shared memory as vec4 (A transposed so
// both operands are read as vec4 along the tile edge).
#version 450
layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, set = 0, binding = 0) readonly buffer A { vec4 a[]; };
layout(std430, set = 0, binding = 1) readonly buffer B { vec4 b[]; };
layout(std430, set = 0, binding = 2) writeonly buffer C { vec4 c[]; };
layout(push_constant) uniform P { uint M; uint N; uint K; } p;

const uint TK = 8;
shared vec4 As[TK][32];   // As[k][r/4]: rows r of the A tile at column k
shared vec4 Bs[TK][32];   // Bs[k][c/4]: columns c of the B tile at row k

void main() {
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint tid = ty * 16 + tx;
    uint row0 = gl_WorkGroupID.y * 128, col0 = gl_WorkGroupID.x * 128;
    uint K4 = p.K / 4, N4 = p.N / 4;

    // Loader roles: 256 invocations move 256 vec4 of A (128 rows x 2 vec4)
    // and 256 vec4 of B (8 rows x 32 vec4) per K-slice.
    uint ar = tid >> 1, ak = (tid & 1) * 4;
    uint bk = tid >> 5, bc = tid & 31;

    vec4 acc[8][2];
    for (int i = 0; i < 8; i++) { acc[i][0] = vec4(0.0); acc[i][1] = vec4(0.0); }

    for (uint k0 = 0; k0 < p.K; k0 += TK) {
        vec4 av = a[(row0 + ar) * K4 + (k0 + ak) / 4];
        As[ak + 0][ar >> 2][ar & 3] = av.x;
        As[ak + 1][ar >> 2][ar & 3] = av.y;
        As[ak + 2][ar >> 2][ar & 3] = av.z;
        As[ak + 3][ar >> 2][ar & 3] = av.w;
        Bs[bk][bc] = b[(k0 + bk) * N4 + col0 / 4 + bc];
        barrier();
        for (uint k = 0; k < TK; k++) {
            vec4 a0 = As[k][ty * 2], a1 = As[k][ty * 2 + 1];
            vec4 b0 = Bs[k][tx * 2], b1 = Bs[k][tx * 2 + 1];
            float ar8[8] = float[8](a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w);
            for (int i = 0; i < 8; i++) {
                acc[i][0] += ar8[i] * b0;
                acc[i][1] += ar8[i] * b1;
            }
        }
        barrier();
    }
    for (uint i = 0; i < 8; i++) {
        uint r = row0 + ty * 8 + i;
        c[r * N4 + col0 / 4 + tx * 2] = acc[i][0];
        c[r * N4 + col0 / 4 + tx * 2 + 1] = acc[i][1];
    }
}
