/* spec.c: spec files as mtctl handles them: read as text. mtctl does not
 * parse YAML; the daemon does, and names the file and line of a mistake
 * (SubmitRequest.yaml_name). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "mtctl.h"
#include "spec.h"

#define SPEC_MAX (4u << 20)  /* far beyond any real spec; the frame cap is 16 MiB */

int spec_read(const char *path, char **text, size_t *len, struct mt_err *err)
{
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    *text = NULL;
    *len = 0;
    if (!f)
        return mt_err_set(err, MT_E_IO, "%s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf) {
        if (n + 1 >= cap) {
            if (cap >= SPEC_MAX) {
                rc = mt_err_set(err, MT_E_INVAL, "%s: larger than %u bytes; not a spec file?",
                                is_stdin ? "<stdin>" : path, SPEC_MAX);
                break;
            }
            char *p = realloc(buf, cap * 2);
            if (!p)
                break;
            buf = p;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                rc = mt_err_set(err, MT_E_IO, "%s: %s", is_stdin ? "<stdin>" : path,
                                strerror(errno));
            break;
        }
    }
    if (!is_stdin)
        fclose(f);
    if (!buf)
        return mt_err_set(err, MT_E_NOMEM, "%s: out of memory", path);
    if (rc) {
        free(buf);
        return rc;
    }
    if (memchr(buf, '\0', n)) {
        free(buf);
        return mt_err_set(err, MT_E_INVAL, "%s: contains a NUL byte; not a YAML file",
                          is_stdin ? "<stdin>" : path);
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

int spec_arg(struct mtctl *c, int argc, char **argv, char **text, const char **name)
{
    if (argc - optind != 1)
        return mtctl_usage_error(c, argc - optind ? "expected one SPEC.yaml" : "no SPEC.yaml given");
    const char *path = argv[optind];
    struct mt_err err = {0};
    size_t len;
    if (spec_read(path, text, &len, &err))
        return mtctl_fail(c, &err);
    *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    return 0;
}
