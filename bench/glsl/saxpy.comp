// saxpy: y = a*x + y over n floats (n a multiple of 4).
// vec4 accesses (about 2x faster than scalar on lavapipe); grid-stride loop
// so the host picks how many vec4s each invocation handles.
#version 450
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer X { vec4 x[]; };
layout(std430, set = 0, binding = 1) buffer Y { vec4 y[]; };
layout(push_constant) uniform P { float a; uint n4; } p;

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < p.n4; i += stride)
        y[i] = p.a * x[i] + y[i];
}
