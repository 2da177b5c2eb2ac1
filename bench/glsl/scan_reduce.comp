// Int inclusive scan, pass 1 of 3: out[wg] = sum of block wg, where a block
// is 4096 ints (1024 ivec4, 4 per invocation, read coalesced).
#version 450
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer In { ivec4 v[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { int r[]; };
layout(push_constant) uniform P { uint n4; } p;

shared int part[256];

void main() {
    uint t = gl_LocalInvocationID.x;
    ivec4 acc = ivec4(0);
    for (uint k = 0; k < 4; k++) {
        uint i = gl_WorkGroupID.x * 1024 + k * 256 + t;
        if (i < p.n4)
            acc += v[i];
    }
    int s = subgroupAdd((acc.x + acc.y) + (acc.z + acc.w));
    if (subgroupElect())
        part[gl_SubgroupID] = s;
    barrier();
    if (t == 0) {
        int tot = 0;
        for (uint k = 0; k < gl_NumSubgroups; k++)
            tot += part[k];
        r[gl_WorkGroupID.x] = tot;
    }
}
