/*
 * fpconv.c: double <-> decimal conversion (placeholder using the C library; being replaced
 * by rivulet's own shortest-digits algorithm). Never depends on the process locale.
 */
#include "codec/fpconv.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static locale_t c_locale(void) {
    static locale_t loc;
    if (!loc) {
        loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    }
    return loc;
}

size_t rv__dtoa_shortest(double d, char *buf) {
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        locale_t old = uselocale(c_locale());
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        uselocale(old);
        if (strtod_l(tmp, NULL, c_locale()) == d) {
            break;
        }
    }
    size_t n = strlen(tmp);
    if (!strpbrk(tmp, ".eEni")) {
        memcpy(tmp + n, ".0", 3);
        n += 2;
    }
    memcpy(buf, tmp, n);
    return n;
}

rv_err_t rv__strtod(const char *s, size_t len, double *out) {
    char tmp[512];
    char *heap = NULL;
    char *p = tmp;
    if (len >= sizeof tmp) {
        heap = malloc(len + 1);
        if (!heap) {
            return RV_ERR_NOMEM;
        }
        p = heap;
    }
    memcpy(p, s, len);
    p[len] = 0;
    *out = strtod_l(p, NULL, c_locale());
    free(heap);
    return isinf(*out) ? RV_ERR_RANGE : RV_OK;
}
