/* placeholder.c — keeps the obs library non-empty until it lands. */
int brigade_obs_placeholder(void);
int brigade_obs_placeholder(void) { return 0; }
