/* xenblkd entry point (placeholder until the daemon lands). */
#include "config.h"
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "xenblkd %s: not implemented yet\n", PACKAGE_VERSION);
    return 1;
}
