/* SPDX-License-Identifier: MIT */
#include "lrq.h"

/* Compiled into the library, so a program can compare the number of the code
 * it runs with the macro of the header it was built against. */
unsigned lrq_version_number(void)
{
    return LRQ_VERSION_NUMBER;
}
