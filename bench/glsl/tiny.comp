// The launch-overhead kernel: one invocation storing one float, so the
// measured time is the submit + wait round trip and not the work.
#version 450
layout(local_size_x = 1) in;
layout(std430, set = 0, binding = 0) writeonly buffer Out { float o[]; };

void main() {
    o[0] = 1.0;
}
