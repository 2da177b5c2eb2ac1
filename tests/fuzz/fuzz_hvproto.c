/* fuzz_hvproto.c — libFuzzer target for the hypervisor's wire decoder
 * (hv/proto.c): the input is a byte stream as a peer would send it. It is
 * cut into frames by hv_recv (header check, resync on garbage, length
 * limits) exactly as pxhvd reads a connection, and every frame's payload
 * goes through hv_decode_request, the daemon's one request decoder. Any
 * crash, leak, undefined behaviour or hang is a finding. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv/hv.h"

static HvIn in;
static HvReq q;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 60000) return 0; /* one pipe's worth: written before reading */
    int fds[2];
    if (pipe(fds)) return 0;
    fcntl(fds[1], F_SETPIPE_SZ, 65536);
    if (hv_write_all(fds[1], data, size, 0)) {
        close(fds[0]), close(fds[1]);
        return 0;
    }
    close(fds[1]);
    memset(&in, 0, offsetof(HvIn, buf));
    in.fd = fds[0];
    for (int frames = 0; frames < 10000; frames++) {
        HvHdr h;
        unsigned char *p;
        HvRecv r = hv_recv(&in, &h, &p, 1u << 16, 0, 0);
        if (r == HV_RECV_EOF || r == HV_RECV_IDLE || r == HV_RECV_TIMEOUT) break;
        if (r != HV_RECV_OK) continue;
        char err[256];
        if (hv_decode_request(h.type, p, h.len, &q, err, sizeof err) == 0 && h.type == HV_COMPILE && q.source_len)
            (void)q.source[q.source_len - 1]; /* the pointers stay inside the payload */
        free(p);
    }
    close(fds[0]);
    return 0;
}
