/* pxecho.c — the guest side of `make vm-test`, linked statically so the
 * guest needs nothing but its kernel.
 *
 *   pxecho --port /dev/vport0p1 --seed S --bytes N
 *
 * Writes a 16-byte header (magic "PXE1", seed, length, 0; little endian)
 * and N bytes generated from S (xorshift32, the low byte of each state) to
 * the port, then reads N bytes back and checks every one against the answer
 * the host must give: out[i] = ~in[N-1-i] ^ (i * 31). The answer depends on
 * every byte and its position, so a relay that drops, reorders, mixes up
 * two guests or echoes unchanged is caught. guest/relay.py is the host side
 * and checks the payload independently.
 * Exit status: 0 all bytes right, 1 a wrong or short answer, 2 usage or
 * I/O error. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint32_t xs_next(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *port = "/dev/vport0p1";
    unsigned long seed = 1, nbytes = 4096;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--bytes") && i + 1 < argc)
            nbytes = strtoul(argv[++i], NULL, 0);
        else {
            fprintf(stderr, "usage: pxecho [--port DEV] [--seed S] [--bytes N]\n");
            return 2;
        }
    }
    /* xorshift32 is stuck at 0; the length travels as 32 bits */
    if (seed == 0 || seed > 0xffffffffUL || nbytes == 0 || nbytes > (64UL << 20)) {
        fprintf(stderr, "pxecho: seed must be 1..2^32-1, bytes 1..64 MiB\n");
        return 2;
    }
    int fd = open(port, O_RDWR);
    if (fd < 0) {
        fprintf(stderr, "pxecho: %s: %s\n", port, strerror(errno));
        return 2;
    }
    unsigned char *in = malloc(nbytes), *back = malloc(nbytes);
    if (!in || !back) {
        fprintf(stderr, "pxecho: out of memory\n");
        return 2;
    }
    uint32_t s = (uint32_t)seed;
    for (unsigned long i = 0; i < nbytes; i++)
        in[i] = (unsigned char)xs_next(&s);
    unsigned char hdr[16] = "PXE1";
    put32(hdr + 4, (uint32_t)seed);
    put32(hdr + 8, (uint32_t)nbytes);
    put32(hdr + 12, 0);
    /* the whole request goes out before any answer is read: the host reads
     * it all first, so neither side can block the other with full buffers */
    if (write_all(fd, hdr, sizeof hdr) || write_all(fd, in, nbytes)) {
        fprintf(stderr, "pxecho: write %s: %s\n", port, strerror(errno));
        return 2;
    }
    size_t got = 0;
    while (got < nbytes) {
        ssize_t r = read(fd, back + got, nbytes - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "pxecho: read %s: %s\n", port, strerror(errno));
            return 2;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got < nbytes) {
        printf("pxecho: short answer: %zu of %lu bytes\n", got, nbytes);
        return 1;
    }
    unsigned long bad = 0, first = 0;
    for (unsigned long i = 0; i < nbytes; i++) {
        unsigned char want = (unsigned char)(~in[nbytes - 1 - i] ^ (unsigned char)(i * 31));
        if (back[i] != want && bad++ == 0)
            first = i;
    }
    if (bad) {
        unsigned char want = (unsigned char)(~in[nbytes - 1 - first] ^ (unsigned char)(first * 31));
        printf("pxecho: MISMATCH seed %lu: %lu of %lu bytes wrong, first at %lu (got 0x%02x, want 0x%02x)\n",
               seed, bad, nbytes, first, back[first], want);
        return 1;
    }
    printf("pxecho: ok seed %lu, %lu bytes sent and %lu checked\n", seed, nbytes, nbytes);
    close(fd);
    return 0;
}
