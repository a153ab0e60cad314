/* placeholder, replaced below */
#include <rivulet/common.h>
#include <stdio.h>
int main(void) { printf("rivulet %s\n", rv_version()); return 0; }
