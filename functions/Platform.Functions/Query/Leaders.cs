namespace Platform.Functions.Query;

/// <summary>
/// The first <c>count</c> of a sequence in a given order, kept while the sequence streams by: a heap of
/// <c>count</c>, so a top-50 of 100,000 rows neither sorts nor holds the other rows.
/// </summary>
public sealed class Leaders<T>(int count, Comparison<T> order)
{
    // Reversed, so the root is the leader that comes last: the first to give way to a better candidate.
    private readonly PriorityQueue<T, T> _heap = new(Comparer<T>.Create((a, b) => order(b, a)));

    public void Offer(T candidate)
    {
        if (_heap.Count < count)
        {
            _heap.Enqueue(candidate, candidate);
        }
        else if (count > 0 && order(candidate, _heap.Peek()) < 0)
        {
            _heap.DequeueEnqueue(candidate, candidate);
        }
    }

    /// <summary>The leaders, first first. Takes them out: call once.</summary>
    public List<T> InOrder()
    {
        var leaders = new List<T>(_heap.Count);
        while (_heap.TryDequeue(out var leader, out _))
        {
            leaders.Add(leader);
        }

        leaders.Reverse();
        return leaders;
    }
}
