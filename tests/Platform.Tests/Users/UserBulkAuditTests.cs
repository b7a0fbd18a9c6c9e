using System.Collections.Concurrent;
using System.Net;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions.Events;
using Platform.Functions.Storage;
using Platform.Functions.Users;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Users;

/// <summary>A bulk create records each chunk's events with that chunk, so a failure in a later chunk loses none of them.</summary>
public sealed class UserBulkAuditTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override void ConfigureServices(IServiceCollection services)
    {
        services.AddSingleton<ChunkWitness>();
        services.AddSingleton<IEventSubscriber>(sp => sp.GetRequiredService<ChunkWitness>());
    }

    [Fact]
    public async Task EachChunkOfCreatesIsAuditedBeforeTheNextChunkIsWritten()
    {
        var witness = App.Services.GetRequiredService<ChunkWitness>();
        witness.Armed = true;
        var response = await Admin.BulkAsync(Enumerable.Range(0, 100).Select(i => new { op = "create", data = new { email = $"chunk{i}@example.com", displayName = $"Chunk {i}" } }));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var batches = witness.Batches.ToList();
        Assert.True(batches.Count >= 2, $"{batches.Count} batch(es) of user.created events");
        Assert.Equal(100, batches.Sum(b => b.Created));
        // When the first chunk's events were recorded, only that chunk (and the admin) had been written.
        Assert.Equal(1 + batches[0].Created, batches[0].Stored);
        Assert.True(batches[0].Stored < 101);
    }

    /// <summary>Sees each batch of user.created events as it is published, with how many users were stored by then.</summary>
    private sealed class ChunkWitness(UserDirectory users) : IEventSubscriber
    {
        public ConcurrentQueue<(int Created, int Stored)> Batches { get; } = new();

        /// <summary>Set once the tenant is signed up, so the sign-up's own event is not taken for a chunk.</summary>
        public bool Armed { get; set; }

        public async Task OnEventsAsync(TenantId tenant, IReadOnlyList<PublishedEvent> events, CancellationToken cancellationToken)
        {
            var created = events.Count(e => e.Event.Type == "user.created");
            if (!Armed || created == 0)
            {
                return;
            }

            var stored = 0;
            await foreach (var user in users.Users(tenant).QueryAsync<TableEntity>(UserEntity.KeyPrefix, cancellationToken: cancellationToken))
            {
                stored++;
            }

            Batches.Enqueue((created, stored));
        }
    }
}
