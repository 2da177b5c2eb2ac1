// Sum reduction, one pass of two: every workgroup sums a grid-stride share of
// in[0..n4) (vec4 elements) into out[workgroup].  The host runs it once over
// the data with ~16 iterations per invocation, then once with a single
// workgroup over the partial sums (padded with zeros to a multiple of 4).
#version 450
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer In { vec4 v[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { float r[]; };
layout(push_constant) uniform P { uint n4; } p;

// One slot per subgroup; 256 covers any subgroup size >= 1.
shared float part[256];

void main() {
    vec4 acc = vec4(0.0);
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < p.n4; i += stride)
        acc += v[i];
    float s = subgroupAdd((acc.x + acc.y) + (acc.z + acc.w));
    if (subgroupElect())
        part[gl_SubgroupID] = s;
    barrier();
    if (gl_LocalInvocationIndex == 0) {
        float t = 0.0;
        for (uint k = 0; k < gl_NumSubgroups; k++)
            t += part[k];
        r[gl_WorkGroupID.x] = t;
    }
}
