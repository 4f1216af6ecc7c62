/* placeholder.c — keeps the module's library buildable until its sources land. */
typedef int brigade_core_placeholder;
