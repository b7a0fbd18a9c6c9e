// Key Vault for the two secrets Platform reads at start: `token-signing-key` (signs access tokens) and
// `data-encryption-key` (encrypts TOTP seeds and webhook secrets at rest). The vault is in RBAC mode (no access
// policies); the app identity can read secrets and nothing more. The secret values are never in this template:
// an ARM secret needs its value in the deployment, so operators create them once (README, "Deploy to Azure").

@description('Name of the vault (3-24 letters, digits and hyphens, globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the vault.')
param tags object

@description('Days a deleted vault or secret can be recovered.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@description('Purge protection: a deleted vault or secret cannot be purged before the retention ends. Recommended: losing data-encryption-key makes encrypted data unreadable. Once on it cannot be turned off.')
param enablePurgeProtection bool = true

@description('Principal (object) ID of the function app identity that reads the secrets.')
param appPrincipalId string

@description('Principal (object) ID of the operator who sets and rotates the secrets; empty for none.')
param operatorPrincipalId string = ''

@description('Kind of the operator principal.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Azure RBAC decides every data-plane access; access policies are ignored.
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    // The API refuses an explicit false, so "off" is expressed by leaving the property out.
    enablePurgeProtection: enablePurgeProtection ? true : null
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource appSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Platform function app: read token-signing-key and data-encryption-key'
  }
}

resource operatorSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    description: 'Operator who deployed Platform: create and rotate its secrets'
  }
}

@description('Name of the vault.')
output name string = vault.name

@description('Vault URI (https://<name>.vault.azure.net/): Platform__KeyVault__Uri.')
output uri string = vault.properties.vaultUri
