namespace Platform.Benchmarks;

/// <summary>
/// Figures of Platform, each printed next to a baseline measured in the same run. One command per figure, each
/// in a static class of its own; add the next figure as another case below.
/// </summary>
internal static class Program
{
    private const string Usage = """
        usage: Platform.Benchmarks <command> [arguments]

        commands:
          startup <appExecutable> <baselineExecutable> [runs=5]
              process start to first 200 on GET /api/health/live, then resident memory after 5 s idle,
              for the app and for the baseline, interleaved; prints median/min/max and the goal
          login <appExecutable> [logins=200]
              sign-in throughput and p50/p99 at 1 and 4 clients next to PasswordHasher.Verify in-process (1 and 4
              threads), and sign-ins to an unknown tenant (same Argon2id, no session); then GET /api/v1/me with a
              valid token next to GET /api/health/live, and a session's first request (cache miss);
              needs AzureWebJobsStorage
          signin-under-bulk <appExecutable> [logins=100] [bulkUsers=1000]
              sign-in p50/p99 (1 client) while 2 POST /api/v1/users/bulk of bulkUsers creates with passwords run
              at once, next to sign-in alone before and after, and how many sign-ins answered 503 busy;
              needs AzureWebJobsStorage
          tokens
              in-process, per operation: decoding an access token (baseline), validating it with the app's
              TokenValidationParameters, the session check on a cache hit and on a miss, and the whole bearer
              authentication; needs AzureWebJobsStorage
          users <appExecutable> [users=100000] [scans=20]
              one tenant of that many users: bulk create (users/s, 1 and 2 callers) next to SDK transactions, then
              GET /api/v1/users?q= and a two-condition filter (p50/p99, warm; the first, cold list apart) next to an
              SDK scan of the partition with the same search/filter in memory; needs AzureWebJobsStorage
          movements <appExecutable> [items=100000] [movements=1000000] [perPass=2000]
              movements/s with 16 clients on 1 hot item and over 1,000 items next to the SDK doing the same reads and
              conditioned transaction; then GET /api/v1/inventory/analytics for a tenant of that many items and
              movements next to an SDK scan of its item and stock rows; needs AzureWebJobsStorage
          tenants <appExecutable> [tenants=200] [users=1000] [requests=400]
              GET /api/v1/users?q= p50/p99 with that many tenants of that many users (preloaded) active at once, a
              random one each request, next to one such tenant alone, and the first (cold) list of each;
              needs AzureWebJobsStorage
          jobs <appExecutable> [rows=100000]
              import of that many inventory items and users from CSV (upload to succeeded) next to the SDK writing the same
              rows in 100-action transactions with the import's chunk parallelism; dry run; export of the items to CSV next
              to an SDK scan written to CSV; peak memory of 100 MB CSV and 20 MB xlsx dry-run imports; engine overhead
              (1-row dry-run import, p50/p99) next to one authenticated GET; kill-and-resume of rows/10 items;
              needs AzureWebJobsStorage
          webhooks <appExecutable> [seconds=30] [deliveries=1000] [intake=2000]
              change-to-delivery latency p50/p99 of 50 movements/s to a local receiver next to the requests' own latency;
              the same with a second endpoint that never answers (isolation); deliveries/s of that many events to one
              endpoint next to as many signed POSTs sent straight to the receiver; POST /api/v1/hooks/{id} requests/s
              and p50/p99 with 16 clients next to GET /api/health/live; needs AzureWebJobsStorage
          usage <appExecutable> [requests=4000]
              request overhead of usage metering: GET /api/v1/permissions p50/p99/mean with 1 and 4 clients on an app
              that meters next to one with Platform__Usage__Enabled=false, in alternating blocks; then checks that
              every request was counted (flush on stop); needs AzureWebJobsStorage
          reports [users=100000] [items=100000] [movements=100000] [runs=3]
              in-process: the time to build the user-insights report over a tenant of that many users and the
              inventory-status report over a tenant of that many items and movements (last 90 days), cold (projections
              load) and warm, next to SDK reads of the same rows without computing; needs AzureWebJobsStorage
          backups [users=100000] [items=100000]
              in-process: backup rows/s of a tenant of that many users and items next to an SDK scan of the same
              partitions, restore rows/s into a new tenant next to SDK 100-row transactions of the same rows, stored
              bytes per 1,000 rows, verify MB/s; needs AzureWebJobsStorage
        """;

    private static async Task<int> Main(string[] args)
    {
        if (args.Length == 0)
        {
            await Console.Error.WriteLineAsync(Usage);
            return 2;
        }

        switch (args[0])
        {
            case "backups":
                return await BackupsFigure.RunAsync(args[1..]);
            case "startup":
                return await StartupFigure.RunAsync(args[1..]);
            case "login":
                return await LoginFigure.RunAsync(args[1..]);
            case "signin-under-bulk":
                return await SignInUnderBulkFigure.RunAsync(args[1..]);
            case "tokens":
                return await TokenValidationFigure.RunAsync(args[1..]);
            case "users":
                return await UsersFigure.RunAsync(args[1..]);
            case "movements":
                return await MovementsFigure.RunAsync(args[1..]);
            case "jobs":
                return await JobsFigure.RunAsync(args[1..]);
            case "webhooks":
                return await WebhooksFigure.RunAsync(args[1..]);
            case "tenants":
                return await TenantsFigure.RunAsync(args[1..]);
            case "usage":
                return await UsageFigure.RunAsync(args[1..]);
            case "reports":
                return await ReportsFigure.RunAsync(args[1..]);
            case "-h" or "--help" or "help":
                Console.WriteLine(Usage);
                return 0;
            default:
                await Console.Error.WriteLineAsync($"unknown command: {args[0]}{Environment.NewLine}{Usage}");
                return 2;
        }
    }
}
