/* demo.c - placeholder until its issue lands: prints usage. */
#define SSL_VGS_IMPLEMENTATION
#include "ssl_vgs.h"
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    (void)argc; (void)argv;
    printf("usage: ./demo [--help]   (not built yet: see the open issues)\n");
    return argc > 1 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
}
