using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Platform.Functions.Identity.Passwords;

namespace Platform.Tests.Identity;

public sealed class PasswordTests
{
    // Argon2id at OWASP's minimum takes tens of milliseconds, so the tests share one hash and use a cheap hasher
    // wherever the cost itself is not what is being tested.
    private static readonly PasswordHasher Hasher = new(Options.Create(new PasswordHashingOptions()));
    private static readonly PasswordHasher CheapHasher =
        new(Options.Create(new PasswordHashingOptions { MemoryKiB = 64, Iterations = 1 }));
    private static readonly PasswordPolicy Policy = new();

    private const string Passphrase = "correct horse battery staple";
    private static readonly Lazy<Task<string>> PassphraseHash = new(() => Hasher.HashAsync(Passphrase, CancellationToken.None));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Made by the reference implementation (the argon2 command of libargon2), salt "saltsaltsaltsalt".
    private const string ReferenceHash =
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM";
    private const string ReferenceHashWithOneIteration =
        "$argon2id$v=19$m=19456,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$L6mBdXpm1Dutvyb2Jtq43Pn5FxaIdxvMDeSRpCMDEX8";
    private const string ReferenceHashOfComposedCafe =
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$Xng0lmnTp3n+fSsF0W+JsySm/qY5K/oWbzXg5zOX4nM";
    private const string ComposedCafe = "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e";
    private const string DecomposedCafe = "cafe\u0301 cre\u0300me bru\u0302le\u0301e";

    [Fact]
    public async Task A_hash_round_trips()
    {
        Assert.Equal(PasswordCheck.Match, await Hasher.VerifyAsync(Passphrase, await PassphraseHash.Value, Ct));
    }

    [Fact]
    public async Task A_wrong_password_is_a_mismatch()
    {
        Assert.Equal(PasswordCheck.Mismatch, await Hasher.VerifyAsync("correct horse battery stapler", await PassphraseHash.Value, Ct));
    }

    [Fact]
    public async Task The_hash_is_a_PHC_string_carrying_OWASP_minimum_parameters_a_16_byte_salt_and_a_32_byte_hash()
    {
        var parts = (await PassphraseHash.Value).Split('$');

        Assert.StartsWith("$argon2id$v=19$m=19456,t=2,p=1$", await PassphraseHash.Value, StringComparison.Ordinal);
        Assert.Equal(6, parts.Length);
        Assert.Equal(16, FromUnpaddedBase64(parts[4]).Length);
        Assert.Equal(32, FromUnpaddedBase64(parts[5]).Length);
        Assert.DoesNotContain("=", parts[4] + parts[5], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_hashes_of_the_same_password_differ_by_their_salt()
    {
        var again = await Hasher.HashAsync(Passphrase, Ct);

        Assert.NotEqual((await PassphraseHash.Value).Split('$')[4], again.Split('$')[4]);
        Assert.NotEqual(await PassphraseHash.Value, again);
    }

    [Fact]
    public async Task A_hash_made_by_the_reference_implementation_verifies()
    {
        Assert.Equal(PasswordCheck.Match, await Hasher.VerifyAsync(Passphrase, ReferenceHash, Ct));
    }

    [Fact]
    public async Task A_hash_with_fewer_iterations_than_configured_verifies_but_needs_rehash()
    {
        Assert.Equal(PasswordCheck.MatchNeedsRehash, await Hasher.VerifyAsync(Passphrase, ReferenceHashWithOneIteration, Ct));
    }

    [Fact]
    public async Task A_hash_with_less_memory_than_configured_verifies_but_needs_rehash()
    {
        var weak = await CheapHasher.HashAsync(Passphrase, Ct);

        Assert.Equal(PasswordCheck.MatchNeedsRehash, await Hasher.VerifyAsync(Passphrase, weak, Ct));
        Assert.Equal(PasswordCheck.Match, await CheapHasher.VerifyAsync(Passphrase, weak, Ct));
    }

    [Fact]
    public async Task An_unknown_user_is_a_mismatch()
    {
        Assert.Equal(PasswordCheck.Mismatch, await Hasher.VerifyAsync(Passphrase, null, Ct));
    }

    [Theory]
    [InlineData("")]
    [InlineData("not a hash")]
    [InlineData("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM")]
    [InlineData("$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM")]
    [InlineData(" $argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM")]
    [InlineData("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM$")]
    [InlineData("$argon2id$v=19$m=19456,t=2$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM")]
    [InlineData("$argon2id$v=19$t=2,m=19456,p=1$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM")]
    [InlineData("$argon2id$v=19$m=19456,t=2,p=1$c2Fsd!!!HNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM")]
    [InlineData("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA==$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM")]
    [InlineData("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNh bHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM")]
    [InlineData("$argon2id$v=19$m=19456,t=2,p=1$$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM")]
    [InlineData("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLE")]
    [InlineData("$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM")]
    [InlineData("$argon2id$v=19$m=99999999999,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM")]
    [InlineData("$argon2id$v=19$m=-19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM")]
    [InlineData("$argon2id$v=19$m=19456,t=100000,p=1$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM")]
    [InlineData("$argon2id$v=19$m=19456,t=2,p=0$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM")]
    [InlineData("$argon2id$v=19$m=19456,t=2,p=255$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM")]
    public async Task A_malformed_or_tampered_hash_is_a_mismatch_without_throwing(string stored)
    {
        Assert.Equal(PasswordCheck.Mismatch, await CheapHasher.VerifyAsync(Passphrase, stored, Ct));
    }

    [Fact]
    public async Task A_hash_with_a_changed_byte_is_a_mismatch()
    {
        var stored = await CheapHasher.HashAsync(Passphrase, Ct);
        var last = stored[^2] == 'A' ? 'B' : 'A';
        var tampered = string.Concat(stored.AsSpan(0, stored.Length - 2), [last], stored.AsSpan(stored.Length - 1));

        Assert.Equal(PasswordCheck.Mismatch, await CheapHasher.VerifyAsync(Passphrase, tampered, Ct));
    }

    [Fact]
    public async Task A_password_is_hashed_as_its_exact_UTF8_without_normalisation()
    {
        // The reference hash pins the encoding; the decomposed spelling is other bytes and so another password.
        Assert.Equal(PasswordCheck.Match, await Hasher.VerifyAsync(ComposedCafe, ReferenceHashOfComposedCafe, Ct));
        Assert.Equal(PasswordCheck.Mismatch, await CheapHasher.VerifyAsync(DecomposedCafe, await CheapHasher.HashAsync(ComposedCafe, Ct), Ct));
    }

    [Fact]
    public async Task A_long_password_is_not_truncated()
    {
        var password = string.Concat(Enumerable.Repeat("a long passphrase, ", 7))[..PasswordPolicy.MaxLength];
        var stored = await CheapHasher.HashAsync(password, Ct);

        Assert.Equal(PasswordCheck.Match, await CheapHasher.VerifyAsync(password, stored, Ct));
        Assert.Equal(PasswordCheck.Mismatch, await CheapHasher.VerifyAsync(password[..72], stored, Ct));
        Assert.Equal(PasswordCheck.Mismatch, await CheapHasher.VerifyAsync(password[..^1] + "!", stored, Ct));
    }

    [Fact]
    public async Task A_password_with_a_lone_surrogate_cannot_be_hashed_and_never_matches()
    {
        const string broken = "passphrase\ud800";

        await Assert.ThrowsAsync<ArgumentException>(() => CheapHasher.HashAsync(broken, Ct));
        Assert.Equal(PasswordCheck.Mismatch, await CheapHasher.VerifyAsync(broken, await CheapHasher.HashAsync("passphrase\ufffd", Ct), Ct));
    }

    [Fact]
    public void Seven_characters_are_too_short()
    {
        Assert.Equal([PasswordPolicy.TooShort], Policy.Check("Kx9#mQ2"));
    }

    [Fact]
    public void A_missing_password_is_too_short()
    {
        Assert.Equal([PasswordPolicy.TooShort], Policy.Check(null));
    }

    [Fact]
    public void Eight_characters_without_any_composition_are_enough()
    {
        Assert.Empty(Policy.Check("Kx9#mQ2v"));
        Assert.Empty(Policy.Check("zqjwvkpl"));
    }

    [Fact]
    public void A_128_character_password_is_accepted_and_129_is_too_long()
    {
        Assert.Empty(Policy.Check(new string('x', 128)));
        Assert.Equal([PasswordPolicy.TooLong], Policy.Check(new string('x', 129)));
    }

    [Fact]
    public void Length_counts_characters_not_UTF16_units_or_bytes()
    {
        var emoji128 = string.Concat(Enumerable.Repeat("\U0001F600", 128));

        Assert.Equal(256, emoji128.Length);
        Assert.Empty(Policy.Check(emoji128));
        Assert.Equal([PasswordPolicy.TooLong], Policy.Check(emoji128 + "\U0001F600"));
        Assert.Equal([PasswordPolicy.TooShort], Policy.Check(string.Concat(Enumerable.Repeat("\U0001F600", 7))));
    }

    [Theory]
    [InlineData("password")]
    [InlineData("Password1")]
    [InlineData("ILOVEYOU")]
    [InlineData("trustno1")]
    public void A_common_password_is_refused_whatever_its_case(string password)
    {
        Assert.Equal([PasswordPolicy.TooCommon], Policy.Check(password));
    }

    [Fact]
    public void A_passphrase_with_spaces_is_accepted()
    {
        Assert.Empty(Policy.Check(Passphrase));
    }

    [Fact]
    public void A_password_with_a_lone_surrogate_is_refused()
    {
        Assert.Equal([PasswordPolicy.NotText], Policy.Check("passphrase\ud800"));
    }

    [Fact]
    public void The_common_password_list_has_at_least_10000_lowercase_entries_and_no_comments()
    {
        var common = Policy.CommonPasswords;

        // A frozen set is both kinds of set Assert.Contains takes; the cast picks one.
        Assert.True(common.Count >= 10_000, $"only {common.Count} common passwords");
        Assert.Contains("123456", (IReadOnlySet<string>)common);
        Assert.Contains("password", (IReadOnlySet<string>)common);
        Assert.All(common, entry => Assert.Equal(entry.ToLowerInvariant(), entry));
        Assert.DoesNotContain(common, entry => entry.Length == 0 || entry.StartsWith('#'));
    }

    [Fact]
    public void Default_settings_pass_validation_and_the_services_resolve()
    {
        using var services = Services(new());

        services.GetRequiredService<IStartupValidator>().Validate();
        Assert.NotNull(services.GetRequiredService<PasswordHasher>());
        Assert.Same(services.GetRequiredService<PasswordPolicy>(), services.GetRequiredService<PasswordPolicy>());
    }

    [Theory]
    [InlineData("MemoryKiB", "19455")]
    [InlineData("MemoryKiB", "1048577")]
    [InlineData("Iterations", "1")]
    [InlineData("Iterations", "17")]
    [InlineData("Parallelism", "0")]
    [InlineData("Parallelism", "17")]
    [InlineData("MaxConcurrentHashes", "1")]
    [InlineData("MaxConcurrentBulkHashes", "0")]
    [InlineData("BusyAfter", "-00:00:01")]
    [InlineData("BusyAfter", "00:05:01")]
    [InlineData("BulkBusyAfter", "00:30:01")]
    public void Settings_outside_the_OWASP_minimum_or_the_verifiable_maximum_fail_at_start(string key, string value)
    {
        using var services = Services(new() { [$"{PasswordHashingOptions.Section}:{key}"] = value });

        Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());
    }

    [Theory]
    [InlineData("4", "4")]
    [InlineData("4", "5")]
    [InlineData(null, "1023")]
    public void A_bulk_lane_that_could_take_every_hashing_slot_fails_at_start(string? slots, string bulk)
    {
        using var services = Services(new()
        {
            [$"{PasswordHashingOptions.Section}:MaxConcurrentHashes"] = slots,
            [$"{PasswordHashingOptions.Section}:MaxConcurrentBulkHashes"] = bulk,
        });

        var failure = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());
        Assert.Contains("MaxConcurrentBulkHashes", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void By_default_bulk_gets_a_quarter_of_two_slots_per_core_and_at_least_one()
    {
        var options = new PasswordHashingOptions();

        Assert.Equal(Math.Max(2, Environment.ProcessorCount * 2), options.EffectiveMaxConcurrentHashes);
        Assert.Equal(Math.Max(1, options.EffectiveMaxConcurrentHashes / 4), options.EffectiveMaxConcurrentBulkHashes);
        Assert.True(options.EffectiveMaxConcurrentBulkHashes < options.EffectiveMaxConcurrentHashes);
        Assert.Equal((TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(60)), (options.BusyAfter, options.BulkBusyAfter));
    }

    [Fact]
    public void Raised_settings_are_bound_from_configuration()
    {
        using var services = Services(new()
        {
            [$"{PasswordHashingOptions.Section}:MemoryKiB"] = "47104",
            [$"{PasswordHashingOptions.Section}:Iterations"] = "3",
            [$"{PasswordHashingOptions.Section}:Parallelism"] = "2",
            [$"{PasswordHashingOptions.Section}:MaxConcurrentHashes"] = "8",
            [$"{PasswordHashingOptions.Section}:MaxConcurrentBulkHashes"] = "3",
            [$"{PasswordHashingOptions.Section}:BusyAfter"] = "00:00:02",
        });

        services.GetRequiredService<IStartupValidator>().Validate();
        var options = services.GetRequiredService<IOptions<PasswordHashingOptions>>().Value;

        Assert.Equal((47104, 3, 2), (options.MemoryKiB, options.Iterations, options.Parallelism));
        Assert.Equal((8, 3, TimeSpan.FromSeconds(2)), (options.EffectiveMaxConcurrentHashes, options.EffectiveMaxConcurrentBulkHashes, options.BusyAfter));
    }

    private static ServiceProvider Services(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        return new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddPasswords()
            .BuildServiceProvider();
    }

    private static byte[] FromUnpaddedBase64(string text) =>
        Convert.FromBase64String(text.PadRight(text.Length + (4 - text.Length % 4) % 4, '='));
}
