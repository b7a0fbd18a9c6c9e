namespace Platform.Tests.Infrastructure;

/// <summary>Polls until a condition holds or a deadline passes - the way to wait for background work without sleeping.</summary>
public static class Eventually
{
    public static async Task<T> Until<T>(Func<Task<T>> probe, Func<T, bool> done, string waitingFor, TimeSpan? timeout = null)
    {
        // 60 s by default: a deadline for background work, not a timing assertion; on a loaded two-core CI run webhook
        // deliveries and job steps have passed 30 s.
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        var interval = TimeSpan.FromMilliseconds(25);
        while (true)
        {
            var value = await probe();
            if (done(value))
            {
                return value;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Gave up waiting for {waitingFor}; last value: {value}");
            }

            await Task.Delay(interval, TestContext.Current.CancellationToken);
            interval = TimeSpan.FromMilliseconds(Math.Min(interval.TotalMilliseconds * 2, 250));
        }
    }
}
