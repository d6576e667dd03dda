/* The SPDK headers bdev's `spdk` feature binds; build.rs allowlists what it uses. */
#include "spdk/stdinc.h"
#include "spdk/env.h"
#include "spdk/thread.h"
#include "spdk/bdev.h"
#include "spdk/bdev_module.h"
#include "spdk/init.h"
#include "spdk/rpc.h"
#include "spdk/log.h"
