/* pool_names.h — names libuv's thread-pool workers, for top -H. */
#ifndef BRIGADE_POOL_NAMES_H
#define BRIGADE_POOL_NAMES_H

/* Start libuv's thread pool now and name each of its threads "pool". Call
 * once, on the main thread, before any loop thread runs. */
void app_name_pool_threads(void);

#endif
