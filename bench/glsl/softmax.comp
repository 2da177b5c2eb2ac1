// Row softmax of a[rows][cols] (cols a multiple of 4), numerically stable.
// One subgroup per row and no barriers: lavapipe runs barriers as coroutine
// switches, so subgroup operations alone are much cheaper.  Pass 1 keeps a
// running (max, sum of exp) per lane ("online softmax"); pass 2 writes.
// The host dispatches ceil(rows / (64 / subgroupSize)) workgroups.
#version 450
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer In { vec4 a[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { vec4 b[]; };
layout(push_constant) uniform P { uint rows; uint cols4; } p;

void main() {
    uint row = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID;
    if (row >= p.rows)
        return;                 // uniform within the subgroup
    uint base = row * p.cols4;
    uint lane = gl_SubgroupInvocationID, step = gl_SubgroupSize;
    float m = uintBitsToFloat(0xff800000u);     // -inf
    float s = 0.0;
    for (uint j = lane; j < p.cols4; j += step) {
        vec4 x = a[base + j];
        float nm = max(m, max(max(x.x, x.y), max(x.z, x.w)));
        vec4 e = exp(x - nm);
        s = s * exp(m - nm) + ((e.x + e.y) + (e.z + e.w));
        m = nm;
    }
    float rm = subgroupMax(m);
    float rs = subgroupAdd(s * exp(m - rm));    // a lane with no columns adds 0
    float inv = 1.0 / rs;
    for (uint j = lane; j < p.cols4; j += step)
        b[base + j] = exp(a[base + j] - rm) * inv;
}
