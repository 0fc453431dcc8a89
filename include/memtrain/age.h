/* age.h: how old something may get, as memtraind.yaml's retention and
 * `mtctl prune --older-than` write it: a number (the grammar of byte
 * counts, memtrain/bytesize.h) and a unit: ms, s, m or min, h, d, w
 * ("30d", "12h", "1.5d", "90min"), or 0. Another number without a unit is
 * refused: a bare "30" could mean seconds or days. At most 100 years. */
#ifndef MEMTRAIN_AGE_H
#define MEMTRAIN_AGE_H

#include <stdint.h>

#include "memtrain/err.h"

/* How messages name the grammar. */
#define MT_AGE_FORMS "an age such as 30d, 12h, 90min or 2w"

/* Parse an age into milliseconds. 0, or MT_E_INVAL with err (may be NULL)
 * saying "expected an age such as 30d, 12h, 90min or 2w, got '30'" or
 * "'900y' is too long (at most 100 years)". *ms is untouched on error. */
int mt_age_parse(const char *text, uint64_t *ms, struct mt_err *err);

#endif
