/* fuzz-spec.c: bytes -> the YAML job-spec reader (spec_parse_string) ->
 * spec_finish, the path every submitted and planned spec takes. */
#include <stdint.h>
#include <stdlib.h>

#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mt_spec s;
    struct mt_err err = {0};
    spec_init(&s);
    if (!spec_parse_string((const char *)data, size, "fuzz.yaml", &s, &err))
        spec_finish(&s, &err);
    return 0;
}
