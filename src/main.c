/* main.c — the command line: serve, mock-llm, admin (placeholder). */
#include <stdio.h>
int main(void) { puts("brigade " BRIGADE_VERSION); return 0; }
