/* jobspec.h: the bridge between the engine's struct mt_spec and protobuf
 * JobSpec (proto/memtrain.proto), driven by the spec's field registry
 * (daemon/engine/specfield.h): each row maps to the proto field of its name.
 *
 * Settings left unset in a spec (NAN floats, -1 enums) travel as absent
 * optional fields and come back unset, so the learning rule still fills
 * them in spec_finish. A JobSpec from a client is untrusted: jobspec_to_spec
 * checks every string and number as the YAML parser does, with messages that
 * name the field ("JobSpec: model.hidden[1].width: expected a positive
 * integer, got 0"). It does not call spec_finish; the caller does.
 *
 * The synthetic dataset's dimension and classes are not carried: spec_finish
 * derives them from the model again. */
#ifndef MT_JOBSPEC_H
#define MT_JOBSPEC_H

#include <stddef.h>
#include <stdint.h>

#include "memtrain.pb-c.h"
#include "memtrain/err.h"
#include "spec.h"

/* Build a JobSpec from `s` into *out; free it with jobspec_free (and only
 * with it: the message and its strings are one allocation). MT_E_INVAL
 * when `s` holds an out-of-range enum, a negative count or a bad layer
 * count, MT_E_NOMEM. */
int jobspec_from_spec(const struct mt_spec *s, Memtrain__JobSpec **out, struct mt_err *err);
/* Frees a message from jobspec_from_spec. Accepts NULL. Messages from
 * memtrain__job_spec__unpack go to memtrain__job_spec__free_unpacked. */
void jobspec_free(Memtrain__JobSpec *js);

/* Fill *s (spec_init first) from a JobSpec, checking every field; *s is
 * untouched on error (MT_E_INVAL). */
int jobspec_to_spec(const Memtrain__JobSpec *js, struct mt_spec *s, struct mt_err *err);

/* Every row of the registry names a JobSpec field of a type that can hold
 * it (tests call this). MT_E_INVAL naming the first row that does not. */
int jobspec_check_registry(struct mt_err *err);

/* Serialise `s` as a JobSpec: *buf is malloc'd (caller frees), *len its size. */
int jobspec_pack(const struct mt_spec *s, uint8_t **buf, size_t *len, struct mt_err *err);
/* Parse JobSpec bytes into *s (via jobspec_to_spec). Malformed bytes are
 * MT_E_INVAL, never a crash. */
int jobspec_unpack(const uint8_t *buf, size_t len, struct mt_spec *s, struct mt_err *err);

#endif
