// Int inclusive scan of 4096-int blocks (4 contiguous ivec4 per invocation),
// plus, when use_off != 0, the inclusive sum of all earlier blocks taken from
// off[block - 1].  Pass 2 runs it on the block sums (one block, use_off 0),
// pass 3 on the data (use_off 1).
#version 450
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer In { ivec4 v[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { ivec4 o[]; };
layout(std430, set = 0, binding = 2) readonly buffer Off { int off[]; };
layout(push_constant) uniform P { uint n4; uint use_off; } p;

shared int sg_total[256];

void main() {
    uint t = gl_LocalInvocationID.x;
    uint base = gl_WorkGroupID.x * 1024 + t * 4;
    ivec4 x[4];
    int run = 0;
    for (uint k = 0; k < 4; k++) {
        ivec4 e = base + k < p.n4 ? v[base + k] : ivec4(0);
        e.y += e.x; e.z += e.y; e.w += e.z;
        x[k] = e + run;
        run = x[k].w;
    }
    int incl = subgroupInclusiveAdd(run);
    if (gl_SubgroupInvocationID == gl_SubgroupSize - 1)
        sg_total[gl_SubgroupID] = incl;
    barrier();
    int before = incl - run;
    for (uint s = 0; s < gl_SubgroupID; s++)
        before += sg_total[s];
    if (p.use_off != 0 && gl_WorkGroupID.x > 0)
        before += off[gl_WorkGroupID.x - 1];
    for (uint k = 0; k < 4; k++)
        if (base + k < p.n4)
            o[base + k] = x[k] + before;
}
