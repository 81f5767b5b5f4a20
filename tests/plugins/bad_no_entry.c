/* A shared object without the entry symbol. */
#include <contrast/contrast.h>

CT_EXPORT int not_a_contrast_plugin(void);
CT_EXPORT int not_a_contrast_plugin(void) { return 42; }
