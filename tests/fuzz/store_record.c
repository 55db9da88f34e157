/* store_record.c: libFuzzer harness for the store's record decoder (bytes read back from disk).
 *
 * Decodes the input; on success the record must re-encode to exactly the input. Secret values
 * come back sealed and are re-encoded as they are (no data key needed), so the check covers every
 * record the decoder accepts. A decode failure must leave the reader where it was. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/bytes.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_reader r = cf_reader_init(data, size);
    cf_attr *a = NULL;
    size_t n = 0;
    if (cf_store_record_decode(&r, &a, &n) != CF_OK) {
        if (r.off != 0)
            abort();
        return 0;
    }
    if (!cf_reader_done(&r))
        abort();
    for (size_t i = 0; i < n; i++)
        if ((a[i].flags & CF_ATTR_SECRET) && !(a[i].flags & CF_ATTR_SEALED))
            abort();   /* secrets never come back in the clear */
    cf_writer w = cf_writer_heap();
    if (cf_store_record_encode(a, n, 1, NULL, &w) != CF_OK)
        abort();
    if (w.len != size || (size && memcmp(w.p, data, size) != 0))
        abort();
    cf_writer_free(&w);
    cf_attrs_free(a, n);
    return 0;
}
