/* redis_scripts.h — the Lua scripts of the Redis governance backend; their
 * keys, arguments and replies are documented at each in redis_scripts.c. */
#ifndef BRIGADE_GOVERN_REDIS_SCRIPTS_H
#define BRIGADE_GOVERN_REDIS_SCRIPTS_H

extern const char GR_LUA_ADMIT[];
extern const char GR_LUA_SETTLE[];
extern const char GR_LUA_SEED[];
extern const char GR_LUA_RESTORE[];
extern const char GR_LUA_RUN_BEGIN[];
extern const char GR_LUA_RUN_RENEW[];
extern const char GR_LUA_RUN_END[];

#endif
