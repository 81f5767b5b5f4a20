/* The plugin skeletons written by `contrast new-plugin` (plugin_templates.c).
 *
 * Each file is an array of lines ending with NULL; "@NAME@" stands for the
 * plugin's name, "@ROLE@" for its role, and in the README "@WHAT@" and
 * "@USAGE@" for the role's description and config snippet. */
#ifndef CONTRAST_HOST_PLUGIN_TEMPLATES_H
#define CONTRAST_HOST_PLUGIN_TEMPLATES_H

typedef struct ct_plugin_template {
    const char *role;               /* "source", "pretext", ... */
    const char *const *source;      /* NAME.c */
    const char *what;               /* one sentence: what the skeleton does */
    const char *usage;              /* config snippet selecting it */
} ct_plugin_template;

/* The template of a role name; NULL for an unknown role. */
const ct_plugin_template *ct_plugin_template_find(const char *role);

/* CMakeLists.txt (find_package(contrast) + contrast_add_plugin) and
 * README.md, shared by every role. */
const char *const *ct_plugin_template_cmake(void);
const char *const *ct_plugin_template_readme(void);

#endif
