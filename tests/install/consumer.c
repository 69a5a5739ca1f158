/* consumer.c: a program built against an installed weft through pkg-config. */
#include <weft.h>

static intptr_t seven(void *arg)
{
    (void)arg;
    return 7;
}

int main(void)
{
    intptr_t r = 0;
    return weft_run(seven, NULL, NULL, &r) != 0 || r != 7;
}
