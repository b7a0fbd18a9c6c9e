using System.Net;
using System.Net.Http.Json;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Http;
using Platform.Functions.Mail;
using Platform.Functions.Storage;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Identity;

/// <summary>
/// A request that runs longer than the <c>Idempotency-Key</c> lease keeps renewing it: a retry meanwhile waits (409)
/// instead of taking over and running the same work a second time beside it.
/// </summary>
public sealed class IdempotencyRenewalTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    private readonly HeldVerificationMail _mail = new();

    // The services hold this test's own state.
    protected override bool SharesApp => false;

    protected override void ConfigureServices(IServiceCollection services) =>
        services.AddSingleton<IMailSender>(sp => _mail.Around(sp.GetRequiredService<MailSender>()));

    [Fact]
    public async Task ARequestOutlivingItsLeaseKeepsItAndARetryWaitsInsteadOfRunningTwice()
    {
        using var client = App.CreateClient();
        var body = new { name = "Slow sign-up", slug = "slow-" + Guid.NewGuid().ToString("N")[..8], admin = new { email = "first@slow.example", password = Accounts.Password, displayName = "First" } };
        _mail.Hold();

        // The sign-up stops at its verification mail, well inside the request.
        var first = Send(client, body);
        await _mail.Entered.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        // Three minutes pass (the lease is two): the running request renews its record every 40 s.
        for (var step = 0; step < 4; step++)
        {
            Clock.Advance(TimeSpan.FromSeconds(45));
            var now = Clock.GetUtcNow();
            await Eventually.Until(RecordStartedAsync, started => started >= now, "the lease to be renewed");
        }

        var retry = await Send(client, body);
        await retry.ReadProblemAsync(409, "idempotency_in_progress");

        _mail.Release();
        Assert.Equal(HttpStatusCode.Created, (await first).StatusCode);
        var replay = await Send(client, body);
        Assert.Equal(HttpStatusCode.Created, replay.StatusCode);
        Assert.True(replay.Headers.Contains("Idempotent-Replayed"));
    }

    private static Task<HttpResponseMessage> Send(HttpClient client, object body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/tenants") { Content = JsonContent.Create(body) };
        request.Headers.Add(Idempotency.Header, "slow-sign-up");
        return client.SendAsync(request, Ct);
    }

    /// <summary>When the one anonymous-scope record (this app's own storage prefix) last started or renewed its run.</summary>
    private async Task<DateTimeOffset?> RecordStartedAsync()
    {
        await foreach (var row in App.Storage.TenantTable(Idempotency.TableName).For(new TenantId("anonymous")).QueryAsync<TableEntity>(cancellationToken: Ct))
        {
            return row.GetDateTimeOffset("CreatedAt");
        }

        return null;
    }

    /// <summary>Once held, the next verification mail waits until released; every other mail goes out at once.</summary>
    private sealed class HeldVerificationMail
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private volatile bool _held;

        public TaskCompletionSource EnteredSource { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Entered => EnteredSource.Task;

        public void Hold() => _held = true;

        public void Release() => _release.TrySetResult();

        public IMailSender Around(IMailSender inner) => new Sender(this, inner);

        private sealed class Sender(HeldVerificationMail gate, IMailSender inner) : IMailSender
        {
            public async Task SendAsync(OutgoingMail mail, CancellationToken cancellationToken)
            {
                if (gate._held && mail.Kind == MailKind.EmailVerification)
                {
                    gate.EnteredSource.TrySetResult();
                    await gate._release.Task.WaitAsync(cancellationToken);
                }

                await inner.SendAsync(mail, cancellationToken);
            }
        }
    }
}
