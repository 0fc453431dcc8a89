/* msgtext.c: walking a protobuf-c message's descriptor for its strings. */
#include "msgtext.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "memtrain/utf8.h"

/* Is field f present in m (a oneof member only when it is the case set)? */
static int field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)((const char *)m + f->quantifier_offset) == f->id;
    return 1;
}

static int check_value(const ProtobufCFieldDescriptor *f, const void *slot, char *where, size_t n)
{
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        const char *s = *(char *const *)slot;
        if (s && mt_utf8_valid_prefix(s, strlen(s)) != strlen(s)) {
            snprintf(where, n, "%s", f->name);
            return -1;
        }
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;
        char inner[128] = "";
        if (sub && msgtext_check(sub, inner, sizeof inner)) {
            snprintf(where, n, "%s.%s", f->name, inner);
            return -1;
        }
    }
    return 0;
}

int msgtext_check(const ProtobufCMessage *m, char *where, size_t n)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (!field_present(m, f))
            continue;
        const char *slot = (const char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = *(const size_t *)((const char *)m + f->quantifier_offset);
            void *const *items = *(void *const *const *)slot; /* strings or messages */
            for (size_t k = 0; k < count; k++)
                if (check_value(f, &items[k], where, n))
                    return -1;
        } else if (check_value(f, slot, where, n)) {
            return -1;
        }
    }
    return 0;
}
