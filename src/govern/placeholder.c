/* placeholder.c — keeps the govern library non-empty until it lands. */
int brigade_govern_placeholder(void);
int brigade_govern_placeholder(void) { return 0; }
