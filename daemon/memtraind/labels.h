/* labels.h: job labels (`mtctl submit --label k=v`), checked and stored.
 *
 * The store keeps a job's labels as one text column, "k=v\n" per label in
 * submit order; keys and values cannot hold '=' or '\n', so the text is
 * unambiguous. Limits: LABELS_MAX labels, keys 1 to LABEL_LEN_MAX characters
 * of [A-Za-z0-9._/-] starting with a letter or digit, values 0 to
 * LABEL_LEN_MAX of [A-Za-z0-9._-]; keys unique. */
#ifndef MT_LABELS_H
#define MT_LABELS_H

#include <stddef.h>

#include "memtrain.pb-c.h"
#include "memtrain/err.h"

#define LABELS_MAX 16
#define LABEL_LEN_MAX 63

/* Check `labels` and encode them into *out (malloc'd, "" for none).
 * MT_E_INVAL with a message naming the label at fault. */
int labels_encode(Memtrain__Label *const *labels, size_t n, char **out, struct mt_err *err);

/* Whether the encoded `enc` (NULL = none) has every label of `sel`. */
int labels_match(const char *enc, Memtrain__Label *const *sel, size_t n);

/* The labels of `enc` as Label messages pointing into `buf`, a copy of enc
 * that the caller frees with labels_free. */
struct labels_msg {
    char *buf;
    Memtrain__Label *items;
    Memtrain__Label **ptrs;
    size_t n;
};
int labels_decode(const char *enc, struct labels_msg *m);
void labels_free(struct labels_msg *m);

#endif
