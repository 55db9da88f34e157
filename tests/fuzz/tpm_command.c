/* tpm_command.c: libFuzzer harness for the TPM engine: a fresh powered TPM, Startup(CLEAR), the
 * input as one command at locality 0 (the first byte of the input selects the locality 0..4 when
 * the input is longer than a header), then a fixed GetRandom that must still succeed: no input may
 * crash the engine or leave it unable to answer. Seed corpus: tests/fuzz/corpus/tpm_command/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tpm/tpm.h"

static size_t exec(tpm_instance *t, uint8_t loc, const uint8_t *c, size_t n, uint8_t *r)
{
    return tpm_execute(t, loc, c, n, r, TPM_MAX_RESPONSE_SIZE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t startup[] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0 };
    static const uint8_t getrandom[] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7B, 0, 8 };
    static uint8_t resp[TPM_MAX_RESPONSE_SIZE];
    tpm_instance *t = NULL;
    if (tpm_instance_new("fuzz", NULL, 0, NULL, NULL, &t) != CF_OK)
        abort();
    tpm_power_on(t);
    if (exec(t, 0, startup, sizeof startup, resp) != 10 || memcmp(resp + 6, "\0\0\0\0", 4) != 0)
        abort();
    uint8_t loc = 0;
    if (size > 10) {
        loc = data[0] % 5;
        data++;
        size--;
    }
    size_t n = exec(t, loc, data, size, resp);
    if (n < 10 || n > TPM_MAX_RESPONSE_SIZE)
        abort();
    n = exec(t, 0, getrandom, sizeof getrandom, resp);
    if (n != 20 || memcmp(resp + 6, "\0\0\0\0", 4) != 0)
        abort();
    tpm_instance_free(t);
    return 0;
}
