/* contrast SDK — version and ABI identity.
 *
 * The ABI major changes when a struct shrinks, a field moves or a callback's
 * meaning changes; the minor changes when structs grow at the end or new
 * functions appear. The host loads a plugin when the plugin's major equals
 * its own and the plugin's minor is not newer than its own. */
#ifndef CONTRAST_VERSION_H
#define CONTRAST_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

#define CT_ABI_MAJOR 1 /* incompatible changes */
#define CT_ABI_MINOR 2 /* backwards-compatible additions (1.1: safetensors metadata access and exact loading;
                          1.2: engine options on the graph (kernel level, bf16
                          precision), the MLP head) */

/* Release version of the SDK (independent of the ABI numbers). */
#define CT_VERSION_STRING "0.2.0"

/* Build tag: the scalar type and threading model the SDK was built with.
 * A plugin compiled against a different tag is refused (like the Linux
 * kernel's vermagic), because tensors would not mean the same thing. */
#define CT_BUILD_TAG "f32-pthread"

/* Runtime version of the linked libcontrast, as (major << 16) | minor.
 * Compare with CT_ABI_MAJOR/CT_ABI_MINOR to detect a mismatched library. */
unsigned ct_version(void);

/* Runtime release string of the linked libcontrast, e.g. "0.1.0". Static. */
const char *ct_version_string(void);

#ifdef __cplusplus
}
#endif
#endif
