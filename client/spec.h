/* spec.h: spec files as mtctl handles them (spec.c): read as text for the
 * daemon to parse. */
#ifndef MTCTL_SPEC_H
#define MTCTL_SPEC_H

#include <stddef.h>

#include "memtrain/err.h"

/* Read PATH ("-" = stdin) into a malloc'd, NUL-terminated *text (the
 * caller's) of *len bytes. MT_E_IO names the file; MT_E_INVAL for a file
 * over 4 MiB or with a NUL byte. */
int spec_read(const char *path, char **text, size_t *len, struct mt_err *err);

struct mtctl;
/* The one SPEC.yaml operand of submit and plan, argv[optind]: its text in
 * *text (the caller frees it) and the name the daemon reports it under in
 * *name ("<stdin>" for "-"). Returns 0, or the exit status after saying
 * what is wrong. */
int spec_arg(struct mtctl *c, int argc, char **argv, char **text, const char **name);

#endif
