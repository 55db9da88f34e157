/* daemon_framing.c: libFuzzer harness for cofferd's framing decoders (src/daemon/framing.c).
 *
 * The first byte picks the channel (mssim command, mssim platform, swtpm data, swtpm control);
 * the rest is the byte stream a client sent. The stream is fed the way a connection reads it, in
 * chunks whose sizes come from the input too, and decoded frame after frame. Checks: a decision
 * never points outside the bytes it was given, NEED always asks for more than it had, a frame is
 * never empty nor larger than CFD_MAX_FRAME, a TPM command never larger than TPM_MAX_COMMAND_SIZE,
 * and decoding is a function of the bytes alone (a second decode gives the same frame). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/framing.c"

static void check(cfd_proto proto, const uint8_t *buf, size_t have, cfd_decision d, const cfd_frame *f)
{
    cfd_frame again;
    if (cfd_decode(proto, buf, have, &again) != d || again.consumed != f->consumed || again.need != f->need ||
        again.body_len != f->body_len || again.body != f->body)
        abort();
    switch (d) {
    case CFD_NEED:
        if (f->need <= have || f->need > CFD_MAX_FRAME)
            abort();
        break;
    case CFD_FRAME:
        if (f->consumed == 0 || f->consumed > have || f->consumed > CFD_MAX_FRAME)
            abort();
        if (f->body && (f->body < buf || f->body + f->body_len > buf + f->consumed))
            abort();
        if (f->body_len > TPM_MAX_COMMAND_SIZE)
            abort();
        break;
    case CFD_CLOSE:
        if (!f->why)
            abort();
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    cfd_proto proto = (cfd_proto)(data[0] % 4);
    uint8_t chunk = data[1] ? data[1] : 1; /* bytes delivered per read */
    data += 2;
    size -= 2;
    static uint8_t buf[CFD_MAX_FRAME];
    size_t have = 0, pos = 0;
    for (;;) {
        cfd_frame f;
        /* decode from an exact-size heap copy so that ASan sees any read past `have` */
        uint8_t *copy = malloc(have ? have : 1);
        if (!copy)
            return 0;
        memcpy(copy, buf, have);
        cfd_decision d = cfd_decode(proto, copy, have, &f);
        check(proto, copy, have, d, &f);
        free(copy);
        if (d == CFD_CLOSE)
            break;
        if (d == CFD_NEED) {
            if (pos == size)
                break;
            size_t n = size - pos < chunk ? size - pos : chunk;
            if (n > sizeof buf - have)
                abort(); /* the decoder asked for more than a connection can buffer */
            memcpy(buf + have, data + pos, n);
            have += n;
            pos += n;
            continue;
        }
        memmove(buf, buf + f.consumed, have - f.consumed);
        have -= f.consumed;
    }
    return 0;
}
