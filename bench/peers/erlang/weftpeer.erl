%% weftpeer: the Erlang/OTP peer of weft-bench for the actor benchmarks of the benchmark
%% contract (/work/shared/BENCH.md): mailbox, actor-pingpong, actor-spawn, actor-memory; and
%% selective, weft-bench's own.
%%
%% Usage (through the wrapper written by build.sh, which starts erl and passes the arguments
%% after -extra):
%%
%%     weftpeer-erlang NAME [--workers W] [--n N]
%%     weftpeer-erlang --list
%%
%% Runs one benchmark and prints exactly one line on stdout, last:
%%
%%     <bench> erlang <workers> <N> <total_seconds> <value>
%%
%% total_seconds has 6 decimals, value 1 decimal (ns per operation, or bytes per process for
%% actor-memory). Only the measured work is timed, with erlang:monotonic_time/1; VM start-up is
%% not. --workers W is applied by the wrapper as `erl +S W:W` (this module checks that the VM
%% really runs W schedulers); the caller pins CPUs with taskset. The wrapper also raises the
%% process limit (+P) for actor-spawn and actor-memory. A wrong result prints a message on
%% stderr and exits 1; a usage error exits 2. actor-spawn also prints `peak_rss_bytes <n>`
%% (VmHWM) on stderr.
-module(weftpeer).

-export([main/0, idle/1]).

-define(SENDERS, 20).              % mailbox: number of sender processes
-define(PROC_MARGIN, 1000).        % processes kept free for the VM's own on top of a benchmark's
-define(SETTLE_MS, 100).           % actor-memory: pause before reading VmRSS (as the Go peer)

%% {Name, DefaultN, Run}, in the order of BENCH.md; Run(N) returns {TotalNs, Value} or calls fail/2.
benches() ->
    [{"mailbox", 2000000, fun mailbox/1},
     {"actor-pingpong", 5000000, fun actor_pingpong/1},
     {"actor-spawn", 20, fun actor_spawn/1},          % N is the depth of the tree
     {"actor-memory", 1000000, fun actor_memory/1},
     {"selective", 100000, fun selective/1}].          % weft-bench's own, not in BENCH.md

%%% Command line ------------------------------------------------------------------------------

main() ->
    try
        run(parse(init:get_plain_arguments(), undefined, undefined, undefined))
    catch
        throw:{usage, Msg} ->
            io:format(standard_error, "weftpeer-erlang: ~s~n", [Msg]),
            usage();
        Class:Reason:Stack ->
            fail("internal error: ~p:~p ~p", [Class, Reason, Stack])
    end.

usage() ->
    io:format(standard_error,
              "usage: weftpeer-erlang NAME [--workers W] [--n N]~n"
              "       weftpeer-erlang --list~n", []),
    halt(2).

%% A wrong result (or a failed measurement): message on stderr, exit status 1.
fail(Format, Args) ->
    io:format(standard_error, "weftpeer-erlang: " ++ Format ++ "~n", Args),
    halt(1).

usage_error(Format, Args) ->
    throw({usage, io_lib:format(Format, Args)}).

%% parse(Args, Name, Workers, N): accepts "--flag value" and "--flag=value".
parse([], undefined, _, _) -> usage();
parse([], Name, Workers, N) -> {Name, Workers, N};
parse(["--list" | _], _, _, _) ->
    [io:format("~s~n", [Name]) || {Name, _, _} <- benches()],
    halt(0);
parse([Help | _], _, _, _) when Help =:= "-h"; Help =:= "--help" -> usage();
parse([Flag, Val | Rest], Name, Workers, N) when Flag =:= "--workers"; Flag =:= "--n" ->
    parse([Flag ++ "=" ++ Val | Rest], Name, Workers, N);
parse(["--workers=" ++ Val | Rest], Name, _, N) ->
    parse(Rest, Name, positive("--workers", Val), N);
parse(["--n=" ++ Val | Rest], Name, Workers, _) ->
    parse(Rest, Name, Workers, positive("--n", Val));
parse(["-" ++ _ | _], _, _, _) -> usage();
parse([Name | Rest], undefined, Workers, N) -> parse(Rest, Name, Workers, N);
parse(_, _, _, _) -> usage().

positive(Flag, Val) ->
    try list_to_integer(Val) of
        V when V >= 1 -> V;
        _ -> usage_error("~s needs an integer >= 1, got ~p", [Flag, Val])
    catch
        error:badarg -> usage_error("~s needs an integer >= 1, got ~p", [Flag, Val])
    end.

run({Name, Workers, N0}) ->
    {DefaultN, Run} =
        case lists:keyfind(Name, 1, benches()) of
            {_, D, R} -> {D, R};
            false -> usage_error("unknown benchmark ~p (try --list)", [Name])
        end,
    Online = erlang:system_info(schedulers_online),
    case Workers of
        undefined -> ok;
        Online -> ok;
        _ -> usage_error("--workers ~b: the VM runs ~b schedulers (start it with +S ~b:~b, "
                         "1..1024)", [Workers, Online, Workers, Workers])
    end,
    N = case N0 of undefined -> DefaultN; _ -> N0 end,
    check_args(Name, N),
    {TotalNs, Value} = Run(N),
    io:format("~s erlang ~b ~b ~.6f ~.1f~n", [Name, Online, N, TotalNs / 1.0e9, Value]),
    halt(0).

check_args("mailbox", N) when N rem ?SENDERS =/= 0 ->
    usage_error("mailbox: N must be a multiple of ~b, got ~b", [?SENDERS, N]);
check_args("actor-spawn", D) when D > 62 ->
    usage_error("actor-spawn: depth ~b is too large", [D]);
check_args("actor-spawn", D) -> check_process_limit((1 bsl D) - 1);
check_args("actor-memory", N) -> check_process_limit(N);
check_args(_, _) -> ok.

%% The VM cannot raise its process limit at run time: it is fixed by erl +P (set by the wrapper).
check_process_limit(Need) ->
    Free = erlang:system_info(process_limit) - erlang:system_info(process_count),
    case Need + ?PROC_MARGIN =< Free of
        true -> ok;
        false -> usage_error("~b processes do not fit the process limit ~b (erl +P)",
                             [Need, erlang:system_info(process_limit)])
    end.

%%% Shared helpers ----------------------------------------------------------------------------

now_ns() -> erlang:monotonic_time(nanosecond).

%% A field of /proc/self/status given in kB (VmRSS, VmHWM), in bytes.
status_bytes(Field) ->
    {ok, Status} = file:read_file("/proc/self/status"),
    Lines = binary:split(Status, <<"\n">>, [global]),
    case [V || Line <- Lines, V <- [string:prefix(Line, [Field, ":"])], V =/= nomatch] of
        [Value] ->
            case string:lexemes(Value, " \t") of
                [Kb, <<"kB">>] -> binary_to_integer(Kb) * 1024;
                _ -> fail("cannot parse ~s: ~s in /proc/self/status", [Field, Value])
            end;
        _ -> fail("no ~s line in /proc/self/status", [Field])
    end.

%%% mailbox -----------------------------------------------------------------------------------
%% 20 senders each send N/20 messages {msg, S, V} to one receiver; sender S sends
%% V = S*(N/20)+J for J = 0..N/20-1 in that order. The receiver keeps the last value seen from
%% each sender (a 20-tuple), checks that each sender's values increase, and sums all values.
%% Measured: from just before the senders are spawned until the receiver has taken the N-th
%% message out of its mailbox (the receiver reads the clock). The receiver is spawned and waiting
%% before the clock starts. Checks: increasing per sender, each sender's last value, and the sum
%% N(N-1)/2 (the values sent are exactly 0..N-1). Value: ns per message.
%% The receiver keeps its message queue off its heap (message_queue_data = off_heap), the setting
%% OTP documents for a process that receives many messages: with the default (on_heap) each of its
%% garbage collections also walks the queued messages, and a backlog of up to N makes that
%% quadratic. OTP 25 also lets several senders enqueue in parallel into an off-heap queue.

mailbox(N) ->
    PerSender = N div ?SENDERS,
    Main = self(),
    Receiver = spawn(fun() ->
                             process_flag(message_queue_data, off_heap),
                             Last = erlang:make_tuple(?SENDERS, -1),
                             Main ! {mailbox, mailbox_receive(N, Last, 0)}
                     end),
    T0 = now_ns(),
    spawn_senders(Receiver, ?SENDERS - 1, PerSender),
    receive
        {mailbox, {done, T1, Last, Sum}} ->
            Want = N * (N - 1) div 2,
            Sum =:= Want orelse fail("mailbox: sum = ~b, want ~b", [Sum, Want]),
            [fail("mailbox: last value of sender ~b = ~b, want ~b", [S, V, W])
             || {S, V} <- lists:zip(lists:seq(0, ?SENDERS - 1), tuple_to_list(Last)),
                W <- [(S + 1) * PerSender - 1], V =/= W],
            {T1 - T0, (T1 - T0) / N};
        {mailbox, {out_of_order, S, V, Prev}} ->
            fail("mailbox: sender ~b sent ~b after ~b", [S, V, Prev])
    end.

spawn_senders(_, S, _) when S < 0 -> ok;
spawn_senders(Receiver, S, PerSender) ->
    spawn(fun() -> mailbox_send(Receiver, S, S * PerSender, S * PerSender + PerSender) end),
    spawn_senders(Receiver, S - 1, PerSender).

%% Send V, V+1, ..., End-1 as {msg, S, V}.
mailbox_send(_, _, End, End) -> ok;
mailbox_send(Receiver, S, V, End) ->
    Receiver ! {msg, S, V},
    mailbox_send(Receiver, S, V + 1, End).

mailbox_receive(0, Last, Sum) ->
    {done, now_ns(), Last, Sum};
mailbox_receive(Left, Last, Sum) ->
    receive
        {msg, S, V} ->
            case element(S + 1, Last) of
                Prev when V > Prev ->
                    mailbox_receive(Left - 1, setelement(S + 1, Last, V), Sum + V);
                Prev -> {out_of_order, S, V, Prev}
            end
    end.

%%% actor-pingpong ----------------------------------------------------------------------------
%% Two processes A and B. A sends {ping, K} to B, B answers {pong, K}; K = 1..N, and each side
%% checks that it receives the K it expects. After the N-th pong, A tells the main process.
%% Measured: from the main process's `go` to A until the main process hears A is done (both
%% processes are spawned and waiting before the clock starts). Value: ns per round trip.

actor_pingpong(N) ->
    Main = self(),
    B = spawn(fun() -> receive {start, A} -> pong_loop(Main, A, 1, N) end end),
    A = spawn(fun() -> receive go -> ping_loop(Main, B, 1, N) end end),
    B ! {start, A},
    T0 = now_ns(),
    A ! go,
    receive
        {pingpong, done} ->
            T1 = now_ns(),
            {T1 - T0, (T1 - T0) / N};
        {pingpong, {Side, Got, Want}} ->
            fail("actor-pingpong: ~s received ~p, want ~b", [Side, Got, Want])
    end.

ping_loop(Main, _, K, N) when K > N ->
    Main ! {pingpong, done};
ping_loop(Main, B, K, N) ->
    B ! {ping, K},
    receive
        {pong, K} -> ping_loop(Main, B, K + 1, N);
        {pong, Got} -> Main ! {pingpong, {"A", Got, K}}
    end.

pong_loop(_, _, K, N) when K > N -> ok;
pong_loop(Main, A, K, N) ->
    receive
        {ping, K} -> A ! {pong, K}, pong_loop(Main, A, K + 1, N);
        {ping, Got} -> Main ! {pingpong, {"B", Got, K}}
    end.

%%% actor-spawn -------------------------------------------------------------------------------
%% A binary tree of depth D = N: the root is at level 1; a process at level < D spawns two
%% children, waits for their two replies {subtree, Count}, replies 1 + the sum to its parent and
%% ends; a leaf (level D) replies 1 at once. 2^D - 1 processes in all.
%% Measured: from just before the root is spawned until the main process has the root's reply,
%% which must be 2^D - 1. Value: ns per process. Also reports the process's peak RSS (VmHWM).

actor_spawn(D) ->
    Main = self(),
    Want = (1 bsl D) - 1,
    T0 = now_ns(),
    spawn(fun() -> tree_node(Main, 1, D) end),
    receive
        {subtree, Count} ->
            T1 = now_ns(),
            Count =:= Want orelse
                fail("actor-spawn: root counted ~b processes, want ~b", [Count, Want]),
            io:format(standard_error, "peak_rss_bytes ~b~n", [status_bytes("VmHWM")]),
            {T1 - T0, (T1 - T0) / Want}
    end.

tree_node(Parent, D, D) ->
    Parent ! {subtree, 1};
tree_node(Parent, Level, D) ->
    Self = self(),
    spawn(fun() -> tree_node(Self, Level + 1, D) end),
    spawn(fun() -> tree_node(Self, Level + 1, D) end),
    receive
        {subtree, Left} ->
            receive
                {subtree, Right} -> Parent ! {subtree, 1 + Left + Right}
            end
    end.

%%% selective (weft-bench's own, not in BENCH.md) ---------------------------------------------
%% N messages {data, I} queued to self, then N rounds of sending self {ping, I} and receiving it
%% by pattern: each receive finds it behind the N data messages. Timed: the N rounds; value: ns
%% per round. Then the backlog is drained and checked in order.

selective(N) ->
    Self = self(),
    [Self ! {data, I} || I <- lists:seq(0, N - 1)],
    T0 = now_ns(),
    selective_rounds(Self, 0, N),
    T1 = now_ns(),
    selective_drain(0, N),
    {T1 - T0, (T1 - T0) / N}.

selective_rounds(_, N, N) -> ok;
selective_rounds(Self, I, N) ->
    Self ! {ping, I},
    receive {ping, I} -> selective_rounds(Self, I + 1, N) end.

selective_drain(N, N) -> ok;
selective_drain(I, N) ->
    receive
        {data, I} -> selective_drain(I + 1, N);
        Other -> fail("selective: backlog message ~b is ~p", [I, Other])
    after 0 -> fail("selective: backlog message ~b is missing", [I])
    end.

%%% actor-memory ------------------------------------------------------------------------------
%% N plain processes (spawn/3, default heap), each tells the main process it is ready and then
%% waits in a receive for `stop`. VmRSS is read just before spawning and again once all N are
%% ready plus a 100 ms settle, so that every one has reached its receive. Value: (after - before)/N
%% bytes per idle process. Measured (total_seconds): spawning until the N-th ready has arrived,
%% without the settle. To keep its own heap out of the RSS delta, the main process holds no list
%% of the pids while measuring; afterwards it finds them with erlang:processes() (their initial
%% call is weftpeer:idle/1), sends each `stop` and waits for N `stopped` replies before exiting.
%% The main process, which receives N ready and N stopped messages, keeps its queue off its heap
%% (see mailbox): on_heap, the backlog of ready messages makes its collections quadratic (15 s
%% instead of 2 s to spawn a million) and would grow its heap inside the measured RSS.

actor_memory(N) ->
    Main = self(),
    process_flag(message_queue_data, off_heap),
    Before = status_bytes("VmRSS"),
    T0 = now_ns(),
    spawn_idle(Main, N),
    await(ready, N),
    T1 = now_ns(),
    receive after ?SETTLE_MS -> ok end,
    After = status_bytes("VmRSS"),
    Idle = [P || P <- erlang:processes(),
                 process_info(P, initial_call) =:= {initial_call, {?MODULE, idle, 1}}],
    length(Idle) =:= N orelse
        fail("actor-memory: found ~b idle processes, want ~b", [length(Idle), N]),
    [P ! stop || P <- Idle],
    await(stopped, N),
    {T1 - T0, (After - Before) / N}.

spawn_idle(_, 0) -> ok;
spawn_idle(Main, K) ->
    spawn(?MODULE, idle, [Main]),
    spawn_idle(Main, K - 1).

%% The idle process: plain receive, no hibernation.
idle(Main) ->
    Main ! ready,
    receive
        stop -> Main ! stopped
    end.

await(_, 0) -> ok;
await(Msg, K) ->
    receive Msg -> await(Msg, K - 1) end.
