using System.Diagnostics;
using System.Globalization;
using System.Runtime;
using System.Security.Cryptography;
using Azure;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Platform.Functions.Auth;
using Platform.Functions.Hosting;
using Platform.Functions.Storage;
using Platform.Functions.Users;

namespace Platform.Benchmarks;

/// <summary>
/// <c>tokens</c>: what checking an access token costs per request, in this process with the app's own services -
/// the <see cref="JwtBearerOptions"/> that <see cref="AuthExtensions.AddPlatformAuth"/> configures (so exactly the
/// app's <see cref="TokenValidationParameters"/> and token handler), <see cref="AccessTokens"/> to issue the token and
/// <see cref="SessionGuard"/> with its <see cref="IMemoryCache"/>. Baseline: decoding the same token without checking it.
/// </summary>
/// <remarks>
/// <para>
/// The session and user rows the token names are written to the storage in <c>AzureWebJobsStorage</c> (under a
/// prefix of this run's own), and the first check of the session is a real miss that reads them, so the cache holds
/// what the app itself puts there, under its own key. Its entry lives the app's 30 s, so the cache-hit line includes
/// the occasional re-read exactly as the app does. To time a miss (two point reads), a second user's cached standing
/// is dropped before each check with <see cref="SessionGuard.ForgetUser"/>, as a change to that user does.
/// </para>
/// <para>
/// A Stopwatch harness rather than BenchmarkDotNet: it needs no package beyond the app's, spawns no build of its own
/// (BenchmarkDotNet's default toolchain compiles a project per run), and interleaves the subjects round by round so a
/// busy 2-core machine disturbs them alike. Each subject is warmed up for <see cref="WarmUp"/> (JIT tiering), then
/// runs <see cref="Rounds"/> rounds of about <see cref="RoundLength"/>; the figure is the median round's time per
/// operation, with the fastest round and the bytes allocated per operation.
/// </para>
/// </remarks>
internal static class TokenValidationFigure
{
    private const int Rounds = 25;
    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan RoundLength = TimeSpan.FromMilliseconds(100);

    // Written by the decode baseline so the JIT cannot drop the work.
    private static JsonWebToken? s_decoded;

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length != 0)
        {
            await Console.Error.WriteLineAsync("usage: tokens");
            return 2;
        }

        var storage = Environment.GetEnvironmentVariable("AzureWebJobsStorage");
        if (string.IsNullOrEmpty(storage))
        {
            await Console.Error.WriteLineAsync("tokens: set AzureWebJobsStorage (infra/bench/identity.sh starts an Azurite and sets it)");
            return 2;
        }

        using var signingKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await using var app = BuildAppServices(signingKey, storage);
        var services = app.Services;

        var tenant = new TenantId(Ids.New());
        var userId = Ids.New();
        var caller = new Caller(tenant, userId, Ids.New());
        var reread = new Caller(tenant, Ids.New(), Ids.New());
        var token = services.GetRequiredService<AccessTokens>().Issue(tenant, userId, caller.SessionId);
        var bearer = services.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>().Get(JwtBearerDefaults.AuthenticationScheme);
        var parameters = bearer.TokenValidationParameters;
        var handler = bearer.TokenHandlers.Single();
        var guard = services.GetRequiredService<SessionGuard>();

        try
        {
            var account = services.GetRequiredService<StorageAccount>();
            await WriteRowsAsync(account, tenant, caller.UserId, caller.SessionId);
            await WriteRowsAsync(account, tenant, reread.UserId, reread.SessionId);
            await CheckAsync(handler, token, parameters, guard, caller, services);
        }
        catch (Exception e) when (e is InvalidOperationException or RequestFailedException)
        {
            await Console.Error.WriteLineAsync($"tokens: {e.Message}");
            return 1;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"tokens: in-process with the app's services (AddPlatformAuth); one ES256 access token of {token.Length} characters; "
            + $"{Rounds} interleaved rounds of ~{RoundLength.TotalMilliseconds:0} ms after {WarmUp.TotalSeconds:0} s warm-up each; "
            + $"{Environment.ProcessorCount} cores, {(GCSettings.IsServerGC ? "server" : "workstation")} GC; "
            + $"handler {handler.GetType().Name}, algorithms {string.Join(",", parameters.ValidAlgorithms)}, types {string.Join(",", parameters.ValidTypes)}"));

        var subjects = new Subject[]
        {
            new("baseline: new JsonWebToken(token) (decode, no checks)", () =>
            {
                s_decoded = new JsonWebToken(token);
                return ValueTask.CompletedTask;
            }),
            new("JsonWebTokenHandler.ValidateTokenAsync, app's parameters", async () =>
            {
                var result = await handler.ValidateTokenAsync(token, parameters);
                if (!result.IsValid)
                {
                    throw new InvalidOperationException("the token stopped validating", result.Exception);
                }
            }),
            new("SessionGuard.IsValidAsync, cache hit (no storage read)", async () =>
            {
                if (!await guard.IsValidAsync(caller, CancellationToken.None))
                {
                    throw new InvalidOperationException("the session check stopped answering valid");
                }
            }),
            new("SessionGuard.IsValidAsync, cache miss (2 point reads)", async () =>
            {
                guard.ForgetUser(reread.Tenant, reread.UserId);
                if (!await guard.IsValidAsync(reread, CancellationToken.None))
                {
                    throw new InvalidOperationException("the session check stopped answering valid after a miss");
                }
            }),
            new("whole request authentication: JwtBearer handler", async () =>
            {
                if (!(await AuthenticateAsync(services, token)).Succeeded)
                {
                    throw new InvalidOperationException("bearer authentication stopped succeeding");
                }
            }),
        };

        foreach (var subject in subjects)
        {
            await subject.WarmUpAsync(WarmUp, RoundLength);
        }

        for (var round = 0; round < Rounds; round++)
        {
            foreach (var subject in subjects)
            {
                await subject.RunRoundAsync();
            }
        }

        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine();
        Console.WriteLine($"{"per operation",-64} {"median",10} {"fastest",10} {"alloc",9}");
        foreach (var subject in subjects)
        {
            Console.WriteLine(string.Create(inv,
                $"{subject.Name,-64} {subject.Median,7:0.00} µs {subject.Fastest,7:0.00} µs {subject.BytesPerOperation,7:0} B"));
        }

        var decode = subjects[0];
        var validate = subjects[1];
        var hit = subjects[2];
        var whole = subjects[4];
        Console.WriteLine(string.Create(inv, $"  {"validation - decode",-62} {validate.Median - decode.Median,+7:+0.00;-0.00} µs"));
        Console.WriteLine(string.Create(inv, $"  {"whole - validation - session check (handler, scope, principal)",-62} {whole.Median - validate.Median - hit.Median,+7:+0.00;-0.00} µs"));
        Console.WriteLine("(whole = a DI scope, an HttpContext and HttpContext.AuthenticateAsync(\"Bearer\"): the JwtBearer handler validating "
            + "with the app's parameters, then the app's OnTokenValidated running SessionGuard, as every authenticated request does. "
            + "A miss costs what the miss line says, at most once per 30 s per session per instance; storage: AzureWebJobsStorage.)");
        return 0;
    }

    /// <summary>
    /// The app's service registrations that authentication needs, from the app's own extension methods, in Production
    /// with throwaway keys and a storage prefix of this run's own. The host is built, never started: no hosted service
    /// runs, nothing listens.
    /// </summary>
    private static WebApplication BuildAppServices(ECDsa signingKey, string storage)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = [],
            EnvironmentName = Environments.Production,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage"] = storage,
            ["Platform:Storage:Prefix"] = "tokens" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)),
            ["Platform:PublicBaseUrl"] = "http://127.0.0.1:7071",
            ["Platform:Auth:SigningKey"] = signingKey.ExportPkcs8PrivateKeyPem(),
            ["Platform:Auth:DataEncryptionKey"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
        });
        builder.AddPlatformHosting();
        builder.AddPlatformStorage();
        builder.AddPlatformAuth();
        return builder.Build();
    }

    /// <summary>An active user and one session of it, as sign-up and sign-in leave them.</summary>
    private static async Task WriteRowsAsync(StorageAccount storage, TenantId tenant, string userId, string sessionId)
    {
        await storage.Table(UserDirectory.TableName).CreateIfNotExistsAsync();
        await storage.Table(Sessions.TableName).CreateIfNotExistsAsync();
        var now = DateTimeOffset.UtcNow;
        await storage.TenantTable(UserDirectory.TableName).For(tenant).AddAsync(new UserEntity
        {
            RowKey = UserEntity.KeyFor(userId),
            Email = "bench@example.com",
            DisplayName = "Benchmark",
            CreatedAt = now,
            UpdatedAt = now,
        });
        await storage.TenantTable(Sessions.TableName).For(tenant).AddAsync(new SessionEntity
        {
            RowKey = SessionEntity.KeyFor(userId, sessionId),
            CreatedAt = now,
            LastSeenAt = now,
            ExpiresAt = now.AddDays(1),
            RefreshHash = "0",
        });
    }

    /// <summary>Each subject once, untimed: a wrong setup fails here with its reason rather than as a figure.</summary>
    private static async Task CheckAsync(TokenHandler handler, string token, TokenValidationParameters parameters, SessionGuard guard, Caller caller,
        IServiceProvider services)
    {
        var result = await handler.ValidateTokenAsync(token, parameters);
        if (!result.IsValid)
        {
            throw new InvalidOperationException($"the app's parameters refuse the app's token: {result.Exception?.Message}");
        }

        // The first check reads the rows (a miss) and caches the answer, as a session's first request does.
        if (!await guard.IsValidAsync(caller, CancellationToken.None))
        {
            throw new InvalidOperationException("SessionGuard found the session or user not active");
        }

        var authenticated = await AuthenticateAsync(services, token);
        if (!authenticated.Succeeded)
        {
            throw new InvalidOperationException($"bearer authentication failed: {authenticated.Failure?.Message ?? "no result"}");
        }
    }

    private static async Task<AuthenticateResult> AuthenticateAsync(IServiceProvider services, string token)
    {
        await using var scope = services.CreateAsyncScope();
        var context = new DefaultHttpContext { RequestServices = scope.ServiceProvider };
        context.Request.Method = HttpMethods.Get;
        context.Request.Path = "/api/v1/me";
        context.Request.Headers.Authorization = "Bearer " + token;
        return await context.AuthenticateAsync(JwtBearerDefaults.AuthenticationScheme);
    }

    private sealed class Subject(string name, Func<ValueTask> operation)
    {
        private readonly List<double> _microseconds = [];
        private long _iterations;
        private long _bytes;
        private long _operations;

        public string Name { get; } = name;

        public double Median => Statistics.Median(_microseconds);

        public double Fastest => _microseconds.Min();

        public double BytesPerOperation => (double)_bytes / _operations;

        /// <summary>Runs for <paramref name="duration"/>, then sizes a round to about <paramref name="round"/>.</summary>
        public async Task WarmUpAsync(TimeSpan duration, TimeSpan round)
        {
            long count = 0;
            var stopwatch = Stopwatch.StartNew();
            while (stopwatch.Elapsed < duration)
            {
                await operation();
                count++;
            }

            _iterations = Math.Max(1, (long)(count * (round / stopwatch.Elapsed)));
        }

        public async Task RunRoundAsync()
        {
            var allocated = GC.GetTotalAllocatedBytes(precise: true);
            var started = Stopwatch.GetTimestamp();
            for (var i = 0L; i < _iterations; i++)
            {
                await operation();
            }

            var elapsed = Stopwatch.GetElapsedTime(started);
            _bytes += GC.GetTotalAllocatedBytes(precise: true) - allocated;
            _operations += _iterations;
            _microseconds.Add(elapsed.TotalMicroseconds / _iterations);
        }
    }
}
