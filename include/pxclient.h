/*
 * pxclient.h — a program as a VM of a running pxhvd: compile, make and
 * fill buffers, launch, wait and read results over the guest protocol
 * (docs/PROTOCOL.md), without a device or compiler of its own. The same
 * calls as pxsched.h's px_vm_*, where the VM is the socket connected to
 * (DIR/vm<N>.sock). What `pxrun --vm` does, as a library (the Python
 * package's px.connect is built on it).
 *
 * Objects and ownership
 * ---------------------
 *   PxClient        one connection (one session of the daemon): the
 *                   modules, buffers and tickets made through it are freed
 *                   by the daemon when it closes (px_client_close).
 *   PxClientModule  a compiled kernel of the VM: its module id at the
 *                   daemon and the kernel's description (name, class,
 *                   params, size symbols). Owned by the caller; free it
 *                   with px_client_module_free before closing its client.
 * Buffer and ticket ids are the VM's (pxsched.h): plain numbers.
 *
 * Threads
 * -------
 * Every call may be made from any thread: one request at a time goes over
 * the connection (a mutex), and px_client_wait waits in short steps so
 * other threads' requests go between them.
 *
 * Errors
 * ------
 * Every fallible call returns a PxResult: the daemon's own code for its
 * refusals (PX_ERR_QUOTA, PX_ERR_COMPILE, PX_ERR_NOT_FOUND, ...),
 * PX_ERR_IO when the connection fails (the client is then unusable:
 * close it). px_client_last_error() is the calling thread's message for
 * its last failure (thread-local, as px_sched_last_error). The library
 * never prints and never exits.
 */
#ifndef PX_CLIENT_H
#define PX_CLIENT_H

#include "px.h"
#include "pxsched.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct PxClient PxClient;
typedef struct PxClientModule PxClientModule;

/* Connects to dir/vm<vm>.sock and says HELLO. dir NULL: the contract's
 * default directory ($PX_HVD, else $XDG_RUNTIME_DIR/px, else /tmp/px-$UID:
 * the only environment variables read, and only then). On failure *out is
 * NULL and *err (when err is not NULL) a malloc'd message to px_free. */
PxResult px_client_connect(const char *dir, uint32_t vm, PxClient **out, char **err);
/* Closes the connection: the daemon frees its session. NULL is fine. */
void px_client_close(PxClient *c);
const char *px_client_last_error(void);
/* The daemon's name of the VM's device, and the VM id it confirmed. */
const char *px_client_device(const PxClient *c);
uint32_t px_client_vm(const PxClient *c);

/* Compiles src (len bytes) at the daemon; kernel NULL or "": the module's
 * only kernel. *diags as px_module_compile's (warnings too; px_free it). */
PxResult px_client_compile(PxClient *c, const char *src, size_t len, const char *file, const char *kernel,
                           PxClientModule **out, char **diags);
/* Frees the module at the daemon (when the connection still stands) and
 * here. NULL is fine. */
void px_client_module_free(PxClientModule *m);
const char *px_client_kernel_name(const PxClientModule *m);
const char *px_client_kernel_class(const PxClientModule *m);
int px_client_kernel_param_count(const PxClientModule *m);
/* As px_kernel_param: strings owned by m. */
void px_client_kernel_param(const PxClientModule *m, int i, PxParamInfo *info);
int px_client_kernel_size_count(const PxClientModule *m);
const char *px_client_kernel_size_name(const PxClientModule *m, int i);

/* A zero-filled buffer of the VM (charged to its quota). */
PxResult px_client_buffer_create(PxClient *c, PxDtype dtype, int rank, const int64_t *shape, uint32_t *buffer);
PxResult px_client_buffer_free(PxClient *c, uint32_t buffer);
/* bytes must be the buffer's size. Large buffers go through shared
 * memory (a sealed memfd), so the frame limit does not apply to them. */
PxResult px_client_buffer_write(PxClient *c, uint32_t buffer, const void *data, size_t bytes);
PxResult px_client_buffer_read(PxClient *c, uint32_t buffer, void *data, size_t bytes);
/* shape: 4 entries. */
PxResult px_client_buffer_info(PxClient *c, uint32_t buffer, PxDtype *dtype, int *rank, int64_t *shape);

/* px_vm_submit's arguments (pxsched.h) for m's kernel; no waiting. */
PxResult px_client_submit(PxClient *c, const PxClientModule *m, const PxArg *args, int nargs, uint64_t *ticket);
/* As px_vm_wait: PX_OK when the ticket finished (res->result says how),
 * PX_ERR_NOT_READY after timeout_ms (< 0: for ever). res may be NULL. */
PxResult px_client_wait(PxClient *c, uint64_t ticket, int timeout_ms, PxTicketResult *res);
/* This VM's statistics (pxctl's per-VM record). */
PxResult px_client_stats(PxClient *c, PxVmStats *out);

#ifdef __cplusplus
}
#endif
#endif
