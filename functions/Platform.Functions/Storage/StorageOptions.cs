using System.ComponentModel.DataAnnotations;

namespace Platform.Functions.Storage;

/// <summary>Settings under <c>Platform:Storage</c> (<c>Platform__Storage__Prefix</c> in the environment).</summary>
public sealed class StorageOptions
{
    public const string Section = "Platform:Storage";

    /// <summary>
    /// Prepended to every table, container and queue name so several instances or test runs can share one
    /// account. Tables allow only letters and digits, so the prefix does too.
    /// </summary>
    [RegularExpression("^([a-z][a-z0-9]{0,19})?$",
        ErrorMessage = "Platform:Storage:Prefix must be empty or 1-20 lowercase letters and digits starting with a letter.")]
    public string Prefix { get; set; } = "";

    /// <summary>
    /// Who writes entity-group transactions: <c>Direct</c> (the default: the app's own writer, <see cref="EntityGroupTransactions"/>,
    /// over the SDK's pipeline) or <c>Sdk</c> (<see cref="Azure.Data.Tables.TableClient.SubmitTransactionAsync"/>), a way
    /// back should a service answer in a form the writer does not read.
    /// </summary>
    [EnumDataType(typeof(TransactionWriter), ErrorMessage = "Platform:Storage:Transactions must be Direct or Sdk.")]
    public TransactionWriter Transactions { get; set; } = TransactionWriter.Direct;
}

public enum TransactionWriter
{
    Direct,
    Sdk,
}
