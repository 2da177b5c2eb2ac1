/* guest_main.c — main of the guest build of pxrun (make guest-client):
 * `pxrun --vm N ...` inside a virtual machine, statically linked, with no
 * Vulkan or LLVM: the daemon compiles and runs; this sends and prints.
 * Besides hv/, it links only libc-only runtime files: runtime/npy.c (.npy
 * files, number parsing) and runtime/dtype.c (element types). */
#include "hv/hv.h"

int main(int argc, char **argv) { return hv_client_main(argc, argv); }
