/* guest_main.c — main of the guest build of pxrun (make guest-client):
 * `pxrun --vm N ...` inside a virtual machine, statically linked, with no
 * Vulkan or LLVM: the daemon compiles and runs; this sends and prints. */
#include <stddef.h>

#include "hv/hv.h"
#include "px.h"

/* runtime/npy.c's one need from the runtime library */
size_t px_dtype_size(PxDtype t) { return t == PX_F16 ? 2 : 4; }

int main(int argc, char **argv) { return hv_client_main(argc, argv); }
