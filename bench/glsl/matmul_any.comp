// SGEMM C[M][N] = A[M][K] * B[K][N], row-major, for any M, N, K: the twin of
// PX's PARALLEL_MATMUL at sizes that are not multiples of its tiles.
// One kernel, written as a hand-tuned general SGEMM is: 128x128 tile per
// workgroup of 16x16 invocations, 8x8 outputs per invocation, K-slices of 8
// staged in shared memory as vec4 (A transposed so both operands are read as
// vec4 along the tile edge); every global load is guarded (out of range
// reads as zero, index clamped so no branch) and every store is guarded, so
// partial tiles at the right and bottom edges and a partial last K-slice
// need no other code. Scalar global accesses: rows of A, B and C need not
// start on a vec4 for arbitrary K and N.
#version 450
layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer B { float b[]; };
layout(std430, set = 0, binding = 2) writeonly buffer C { float c[]; };
layout(push_constant) uniform P { uint M; uint N; uint K; } p;

const uint TK = 8;
shared vec4 As[TK][32];   // As[k][r/4]: rows r of the A tile at column k
shared vec4 Bs[TK][32];   // Bs[k][c/4]: columns c of the B tile at row k

float ldA(uint r, uint k) {
    bool ok = r < p.M && k < p.K;
    float v = a[ok ? r * p.K + k : 0u];
    return ok ? v : 0.0;
}

float ldB(uint k, uint col) {
    bool ok = k < p.K && col < p.N;
    float v = b[ok ? k * p.N + col : 0u];
    return ok ? v : 0.0;
}

void main() {
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint tid = ty * 16 + tx;
    uint row0 = gl_WorkGroupID.y * 128, col0 = gl_WorkGroupID.x * 128;

    // Loader roles: 256 invocations move 128 rows x 8 of A and 8 rows x 128
    // of B per K-slice, four consecutive elements each.
    uint ar = tid >> 1, ak = (tid & 1) * 4;
    uint bk = tid >> 5, bc = tid & 31;

    vec4 acc[8][2];
    for (int i = 0; i < 8; i++) { acc[i][0] = vec4(0.0); acc[i][1] = vec4(0.0); }

    for (uint k0 = 0; k0 < p.K; k0 += TK) {
        As[ak + 0][ar >> 2][ar & 3] = ldA(row0 + ar, k0 + ak + 0);
        As[ak + 1][ar >> 2][ar & 3] = ldA(row0 + ar, k0 + ak + 1);
        As[ak + 2][ar >> 2][ar & 3] = ldA(row0 + ar, k0 + ak + 2);
        As[ak + 3][ar >> 2][ar & 3] = ldA(row0 + ar, k0 + ak + 3);
        uint bcol = col0 + bc * 4;
        Bs[bk][bc] = vec4(ldB(k0 + bk, bcol), ldB(k0 + bk, bcol + 1),
                          ldB(k0 + bk, bcol + 2), ldB(k0 + bk, bcol + 3));
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
        if (r >= p.M)
            continue;
        for (uint j = 0; j < 8; j++) {
            uint col = col0 + tx * 8 + j;
            if (col < p.N)
                c[r * p.N + col] = acc[i][j >> 2][j & 3];
        }
    }
}
