/* `contrast version`: the program, SDK and plugin ABI versions. */
#include <stdio.h>

#include "cli/commands.h"

int ct_cmd_version(int argc, char **argv) {
    (void)argv;
    if (argc > 1) return ct_cli_error("version takes no arguments"), 2;
    unsigned v = ct_version();
    printf("contrast %s\nplugin ABI %d.%d (libcontrast %s, ABI %u.%u), build tag %s\n",
           CT_VERSION_STRING, CT_ABI_MAJOR, CT_ABI_MINOR, ct_version_string(), v >> 16, v & 0xffffu,
           CT_BUILD_TAG);
    return 0;
}
