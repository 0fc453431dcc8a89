/* age.c: ages with a unit (memtrain/age.h). */
#include "memtrain/age.h"

#include <stdio.h>

#include "memtrain/bytesize.h"

#define AGE_MAX_MS (100ull * 365 * 24 * 3600 * 1000)

int mt_age_parse(const char *text, uint64_t *ms, struct mt_err *err)
{
    static const struct mt_unit units[] = {   /* in milliseconds */
        {"ms", 1}, {"s", 1000}, {"sec", 1000}, {"m", 60000}, {"min", 60000},
        {"h", 3600000}, {"d", 86400000}, {"w", 604800000},
    };
    char shown[48];
    snprintf(shown, sizeof shown, "%s", text ? text : "");
    if (text && text[0] == '0' && text[1] == '\0') {   /* 0 needs no unit */
        *ms = 0;
        return 0;
    }
    switch (mt_unit_parse(text ? text : "", units, sizeof units / sizeof units[0], AGE_MAX_MS,
                          ms)) {
    case 0:
        return 0;
    case MT_UNIT_RANGE:
        return mt_err_set(err, MT_E_INVAL, "'%s' is too long (at most 100 years)", shown);
    }
    return mt_err_set(err, MT_E_INVAL, "expected " MT_AGE_FORMS ", got '%s'", shown);
}
