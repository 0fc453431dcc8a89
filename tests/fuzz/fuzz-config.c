/* fuzz-config.c: bytes -> memtraind.yaml -> config_load_file (which ends
 * with config_finish). The reader takes a path only, so the input is
 * written to a temporary file first. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/mt-fuzz-config-%ld.yaml", (long)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    struct mt_config c;
    struct mt_err err = {0};
    if (config_defaults(&c))
        abort();
    config_load_file(&c, path, &err);
    config_free(&c);
    unlink(path);
    return 0;
}
