/* resyncctl: the operator's toolkit for Resync.  All work is in cmd.c and
 * the cmd_*.c files; this is only the entry point. */
#include "cmd.h"

int main(int argc, char **argv)
{
	return cmd_dispatch(cmd_table, argc, argv);
}
