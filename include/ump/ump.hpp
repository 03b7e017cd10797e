// ump/ump.hpp — everything of the ump flavour: channel, client, weak_client, server,
// reply_context, wait_reply, result/error. See README.md for the contract in one page.
#pragma once

#include "ump/channel.hpp"
#include "ump/client.hpp"
#include "ump/options.hpp"
#include "ump/reply_context.hpp"
#include "ump/result.hpp"
#include "ump/scheduler.hpp"
#include "ump/server.hpp"
#include "ump/wait_reply.hpp"
