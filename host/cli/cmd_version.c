/* `contrast version`: the program, SDK and plugin ABI versions, and
 * whether data-parallel training (MPI) is built in. */
#include <stdio.h>

#include "cli/commands.h"
#include "dist/dist.h"

int ct_cmd_version(int argc, char **argv) {
    (void)argv;
    if (argc > 1) return ct_cli_error("version takes no arguments"), 2;
    unsigned v = ct_version();
    printf("contrast %s\nplugin ABI %d.%d (libcontrast %s, ABI %u.%u), build tag %s\n",
           CT_VERSION_STRING, CT_ABI_MAJOR, CT_ABI_MINOR, ct_version_string(), v >> 16, v & 0xffffu,
           CT_BUILD_TAG);
    if (ct_dist_built_with_mpi())
        printf("MPI: built in (%s): mpirun -np P contrast train CONFIG trains data-parallel\n", ct_dist_backend());
    else
        printf("MPI: not built in (data-parallel training needs libopenmpi-dev at build time)\n");
    return 0;
}
